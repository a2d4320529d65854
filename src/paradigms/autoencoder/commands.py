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
    from ..engine.report import save_results
    from .anomaly import anomaly_run, figures

    r = anomaly_run(run_dir, normal, device.value if device else None)
    typer.echo(f"AUROC {r['auroc']:.4f}: normal {', '.join(r['normal'])}; {r['anomalies']:,} anomalies among "
               f"{r['n']:,} test images")
    keep = {k: r[k] for k in ("auroc", "normal", "n", "anomalies")}
    path, report = save_results(Path(run_dir), "anomaly", keep, figures(r))
    typer.echo(f"results: {path}  (report: {report})")


def commands(app: typer.Typer) -> None:
    app.command("anomaly")(anomaly)
