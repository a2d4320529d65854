"""The autoencoders' command: ``paradigms anomaly`` (the work: :func:`.anomaly.anomaly_run`).

    paradigms anomaly RUN_DIR [--normal 0,1]     # AUROC of the run's anomaly score on the test set
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..cli import DeviceOpt


def anomaly(
    run_dir: Annotated[Path, typer.Argument(help="a run folder of an autoencoder or vae")],
    normal: Annotated[Optional[str], typer.Option(help="the normal classes, names or indices (default: the "
                                                       "classes the run trained on)")] = None,
    device: DeviceOpt = None,
) -> None:
    """Score every test image by the run's anomaly score: AUROC, score histograms, most and least anomalous."""
    from ..engine.report import save_result
    from ..engine.results import Result
    from .anomaly import anomaly_run, figures

    r = anomaly_run(run_dir, normal, device.value if device else None)
    typer.echo(f"AUROC {r['auroc']:.4f}: normal {', '.join(r['normal'])}; {r['anomalies']:,} anomalies among "
               f"{r['n']:,} test images")
    if r["caveat"]:
        typer.echo(f"note: {r['caveat']}", err=True)
    keep = {k: r[k] for k in ("auroc", "normal", "n", "anomalies", "trained_on", "caveat")}
    result = Result(command="anomaly", name=f"anomaly-normal-{'-'.join(r['normal'])}",
                    title=f"Anomaly detection: {', '.join(r['normal'])} normal, every other class anomalous",
                    parameters={"normal": ", ".join(r["normal"]), "trained on": r["trained_on"],
                                "test images": f"{r['n']:,}"},
                    columns=["test images", "anomalies", "AUROC"], rows=[[f"{r['n']:,}", f"{r['anomalies']:,}",
                                                                         f"{r['auroc']:.3f}"]],
                    summary=("AUROC is the chance that a random anomaly scores above a random normal image "
                             "(0.5: no better than chance). " + (r["caveat"] or "")).strip(),
                    values=keep)
    captions = {"scores": "How the anomaly scores of normal test images and of anomalies are spread: the less the two "
                          "overlap, the higher the AUROC.",
                "most": "The 16 test images the run finds most anomalous (highest scores).",
                "least": "The 16 test images it finds least anomalous: they should be of the normal classes."}
    path, report = save_result(Path(run_dir), result, {k: (f, captions[k]) for k, f in figures(r).items()})
    typer.echo(f"results: {path}  (report: {report})")


def commands(app: typer.Typer) -> None:
    app.command("anomaly")(anomaly)
