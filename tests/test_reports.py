"""Every recipe's report explains itself: its title says what ran, the recipe's paragraph says what it learns, every
figure has a caption and comes in the reader's order (the curves, the recipe's own, then the commands' results), and
no raw JSON is left for a reader to decode."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from markupsafe import escape

from paradigms import recipes
from paradigms.engine import Trainer

from .test_cli import run_cli
from .test_engine import config

SMALL = ["train.epochs=1", "train_size=300"]
SETTINGS = {                                     # one epoch on the embedded data, as small as it runs
    "supervised": [*SMALL, "augment=[standard]", "adversarial.method=fgsm-mix", "adversarial.eval_n=50"],
    "backprop": ["train.epochs=1"],
    "autoencoder": [*SMALL, "probe_n=300"],
    "vae": [*SMALL, "iwae_n=50", "iwae_k=5"],
    "gan": [*SMALL],
    "semi-gan": [*SMALL, "labels=20"],
    "gpt": ["train.epochs=1", "steps_per_epoch=10", "eval_batches=2", "sample_tokens=20"],
    "bert": ["train.epochs=1", "steps_per_epoch=10", "eval_batches=2"],
    "mae": [*SMALL],
    "simclr": [*SMALL, "probe=false"],
    "moco": ["train.epochs=1", "train_size=512", "queue_size=256", "probe=false"],
    "clip": [*SMALL],
    "triplet": ["dataset=digits", "test_identities=3", "val_identities=2", "train.epochs=1", "eval_n=100"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each recipe's 1-epoch run (finetune from the supervised one), and one attack kept with the supervised run."""
    root = tmp_path_factory.mktemp("reports")
    out = {}
    for name, sets in SETTINGS.items():
        Trainer(config(name, sets), root / name, progress=False).fit()
        out[name] = root / name
    Trainer(config("finetune", [*SMALL, f"source={out['supervised']}"]), root / "finetune", progress=False).fit()
    out["finetune"] = root / "finetune"
    return out


def test_every_recipe_is_covered():
    assert set(SETTINGS) | {"finetune"} == set(recipes.all_recipes())


def figures_of(page: str) -> list[tuple[str, str]]:
    """(figure id, caption) of every recipe figure on the page, in order."""
    return re.findall(r'<figure id="fig-([^"]+)">.*?<figcaption><b>[^<]*</b>\s*(.*?)</figcaption>', page, re.S)


@pytest.mark.parametrize("name", sorted([*SETTINGS, "finetune"]))
def test_a_report_says_what_ran_what_it_learns_and_captions_every_figure(runs, name):
    run = runs[name]
    page = (run / "report.html").read_text()
    dataset = yaml.safe_load((run / "config.yaml").read_text())["dataset"]
    title = re.search(r"<h1>(.*?)</h1>", page).group(1)
    assert title.startswith(f"{name} on {dataset} · quick preset · 20"), title
    about = recipes.get(name).about
    assert len(about) > 200 and str(escape(about)) in page
    figs = figures_of(page)
    drawn = [e["name"] for e in json.loads((run / "figures" / "figures.json").read_text())]
    assert [f for f, _ in figs] == drawn and drawn[0] == "curves", drawn
    if name in ("gpt", "bert"):                       # text: what it wrote is a note, not a figure
        assert "<h3>Sample</h3>" in page or "<h3>Fill</h3>" in page
    else:
        assert len(drawn) >= 2, drawn
    assert all(len(caption) > 40 for _, caption in figs), figs
    body = page.split("<h2>Config</h2>")[0]
    assert '{"' not in body and "': " not in body                    # no raw JSON or dict left for the reader


def test_the_commands_results_follow_the_figures_as_tables(runs, capsys, tmp_path):
    import shutil

    run = tmp_path / "sup"
    shutil.copytree(runs["supervised"], run)
    code, _, err = run_cli(capsys, "attack", str(run), "--eps", "0,0.1", "--steps", "3", "--n", "60")
    assert code == 0, err
    page = (run / "report.html").read_text()
    assert page.index('<figure id="fig-curves">') < page.index("What the commands found") < page.index("PGD-3")
    table = page.split("What the commands found")[1]
    assert "<th>eps</th><th>accuracy under attack</th>" in table
    assert re.search(r'<td class="num">\d+\.\d%</td>', table)          # percentages, not 16-digit floats
    assert not re.search(r"\d\.\d{6,}", table)


def test_a_sample_of_small_images_is_scaled_up_to_be_seen(runs, capsys, tmp_path):
    from PIL import Image

    code, out, err = run_cli(capsys, "sample", str(runs["vae"]), "--n", "16", "--out", str(tmp_path / "s.png"))
    assert code == 0, err
    w, h = Image.open(tmp_path / "s.png").size
    assert w >= 4 * 64 and h >= 4 * 64                                  # 8x8 digits, each shown 64 pixels wide
