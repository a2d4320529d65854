"""The language models' commands: ``paradigms fill`` and ``paradigms embed``
(``paradigms sample RUN_DIR --prompt ...`` streams a gpt run's text)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..cli import DeviceOpt
from ..errors import UserError


def fill(
    run_dir: Annotated[Path, typer.Argument(help="a bert run folder")],
    text: Annotated[str, typer.Argument(help="text with [MASK] where a word is to be predicted")],
    top: Annotated[int, typer.Option(min=1, max=100, help="how many predictions per [MASK]")] = 5,
    device: DeviceOpt = None,
) -> None:
    """Fill in the blanks: the most likely tokens for each [MASK] and their probabilities."""
    from ..engine.trainer import load_trained

    trained = load_trained(run_dir, device.value if device else None)
    if not callable(getattr(trained, "fill", None)):
        raise UserError(f"{run_dir} is a {trained.name} run; fill needs a masked language model (a bert run)")
    for k, guesses in enumerate(trained.fill(text, top), start=1):
        typer.echo(f"[MASK] {k}: " + "  ".join(f"{t!r} {p:.3f}" for t, p in guesses))


def embed(
    model: Annotated[str, typer.Argument(help="a bert run folder, a Hugging Face BERT folder (config.json, "
                                              "model.safetensors, tokenizer.json), or minilm")],
    texts: Annotated[list[str], typer.Argument(help="two or more texts")],
    device: DeviceOpt = None,
) -> None:
    """Sentence embeddings (the mean of the last states) and the cosine similarity of every pair of texts."""
    from ..nets.pretrained import from_pretrained, resolve_model
    from ..nets.sentence import sentence_embeddings

    if len(texts) < 2:
        raise UserError("give two or more texts to compare, e.g. paradigms embed minilm \"a cat\" \"a dog\"")
    if (Path(model) / "config.yaml").is_file():                   # one of our runs
        from ..engine.trainer import load_trained

        trained = load_trained(Path(model), device.value if device else None)
        if getattr(trained, "causal", True) or not hasattr(trained, "net"):
            raise UserError(f"{model} is a {trained.name} run; embed needs a bidirectional encoder (a bert run, "
                            "a Hugging Face BERT folder, or minilm)")
        net, tok = trained.net, trained.tokenizer
    else:
        net, tok = from_pretrained(resolve_model(model))
        if device is not None and device.value != "auto":
            net = net.to(device.value)
    e = sentence_embeddings(net, tok, texts)                      # (N, C), unit length
    sim = (e @ e.T).cpu()
    width = min(40, max(len(t) for t in texts))
    typer.echo(f"cosine similarity ({net.cfg.n_layer} layers, width {net.cfg.n_embd}):")
    for i, t in enumerate(texts):
        typer.echo(f"  {t[:width]:<{width}}  " + "  ".join(f"{float(v):+.3f}" for v in sim[i]))


def commands(app) -> None:
    app.command("fill")(fill)
    app.command("embed")(embed)
