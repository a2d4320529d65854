"""Data augmentation brings one command: ``paradigms augment`` (the lecture's "1 image => 18" pictures)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UserError


def augment(
    image: Annotated[Optional[Path], typer.Argument(help="an image file (or use --dataset and --index)")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="take the image from this image dataset instead of a "
                                                   "file (`paradigms datasets` lists them)")] = None,
    index: Annotated[int, typer.Option(help="which training image of --dataset")] = 0,
    data_dir: Annotated[Optional[str], typer.Option(help="data root (else $PARADIGMS_DATA, else the user cache)")] = None,
    n: Annotated[int, typer.Option("--n", min=1, max=100, help="how many augmented versions")] = 18,
    sheet: Annotated[bool, typer.Option(help="one labelled row per transform family instead of the grid")] = False,
    policy: Annotated[Optional[str], typer.Option(help="a policy as YAML, e.g. '[rotate, {cutout: {size: 8}}]'")] = None,
    strength: Annotated[Optional[float], typer.Option(help="set each transform the policy names bare (rotate, "
                                                      "blur...) to this strength, 0 (barely) to 1")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    out: Annotated[Path, typer.Option(help="the PNG to write")] = Path("augment.png"),
) -> None:
    """Draw one image and N augmented versions, each labelled with what was done (or --sheet)."""
    import torch

    from . import at_strength, build, read_policy
    from . import figures as F
    from ..data.images import read_image

    torch.manual_seed(seed)
    if (image is None) == (dataset is None):
        raise UserError("give an image file or --dataset D [--index I], not both")
    partners, mean = None, None
    if dataset is not None:
        from ..data import load_images

        data = load_images(dataset, data_dir)
        x = data.train_x
        if x is None:
            raise UserError(f"dataset {dataset!r} is streamed from disk; give one of its image files instead")
        if not 0 <= index < len(x):
            raise UserError(f"--index {index} is out of range: {dataset} has {len(x)} training images (0..{len(x) - 1})")
        img = x[index].float() / 255
        partners = x[torch.randperm(len(x))[:8]].float() / 255
        title = f"{dataset} #{index} ({data.classes[int(data.train_y[index])]})"
        mean = data.mean
    else:
        img = read_image(image)
        title = image.name
    if partners is None:  # a lone file mixes with mirrored and rotated copies of itself
        partners = torch.stack([img.flip(2), img.flip(1), img.flip(1).flip(2)])
    if sheet:
        fig = F.sheet_figure(img, partners, mean=mean)
    else:
        spec = read_policy(policy) if policy is not None else None
        if strength is not None:
            spec = at_strength(spec or [], strength)
        pol = build(spec, dataset or "", img.shape[0], mean=mean) if spec else None
        fig = F.grid_figure(img, n, pol, title=f"{title}: 1 image => {n} training images", mean=mean)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130, bbox_inches="tight")
    typer.echo(f"wrote {out}")


def commands(app: typer.Typer) -> None:
    app.command("augment")(augment)
