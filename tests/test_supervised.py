"""The supervised recipe's pieces: networks, augmentation, schedules, image folders (in memory and streamed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from paradigms.nets import NetConfig, build_net
from paradigms.optim import OptimConfig, lr_at
from paradigms.supervised.classify import cross_entropy

from .test_engine import config
from paradigms.engine import Trainer


@pytest.mark.parametrize("name,shape", [("mlp", (1, 8, 8)), ("lenet5", (1, 8, 8)), ("lenet5", (1, 28, 28)),
                                        ("lenet5", (3, 32, 32)), ("resnet", (3, 32, 32)), ("resnet", (1, 8, 8)),
                                        ("resnet18", (3, 32, 32)), ("preact-resnet18", (1, 28, 28))])
def test_networks_map_images_to_logits_and_features(name, shape):
    net = build_net(NetConfig(name=name, width=2), shape, 7)
    x = torch.randn(5, *shape)
    assert net(x).shape == (5, 7)
    assert net.features(x).shape == (5, net.embed_dim)
    assert len(net.blocks) >= 3


def test_soft_targets_and_schedule():
    logits = torch.randn(4, 3)
    y = torch.tensor([0, 2, 1, 1])
    assert torch.allclose(cross_entropy(logits, y), cross_entropy(logits, torch.eye(3)[y]))
    cfg = OptimConfig(lr=1.0, schedule="onecycle", warmup=0.25)
    assert [round(lr_at(s, 100, cfg), 3) for s in (0, 25, 100)] == [0.0, 1.0, 0.0]
    assert lr_at(50, 100, OptimConfig(lr=1.0, schedule="cosine")) == pytest.approx(0.5)


def make_folder(root, n_per_class=12, size=(10, 12)):
    rng = np.random.default_rng(0)
    for k, name in enumerate(["circles", "squares"]):
        (root / name).mkdir(parents=True)
        for i in range(n_per_class):
            img = rng.integers(0, 60, (size[1], size[0], 3), dtype=np.uint8)
            img[..., k] += 150  # class k is brighter in channel k: learnable
            Image.fromarray(img).save(root / name / f"{i}.png")


@pytest.mark.parametrize("memory_mb", [4096, 0])
def test_imagefolder_trains_in_memory_and_streamed(tmp_path, memory_mb):
    make_folder(tmp_path / "imgs")
    cfg = config("supervised", ["model.name=mlp", "model.hidden=[16]", "train.epochs=8", "train.batch_size=8",
                                f"memory_mb={memory_mb}", "train.workers=0", "optim.lr=0.05"],
                 dataset=f"imagefolder:{tmp_path / 'imgs'}")
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    assert (trainer.recipe.data.train_stream is not None) == (memory_mb == 0)
    final = trainer.fit()
    assert final["test/acc"] == 1.0
    assert json.loads((tmp_path / "run" / "final.json").read_text())["test/acc"] == 1.0


def test_val_size_holds_out_training_images_and_never_reads_the_test_set(tmp_path, monkeypatch):
    import dataclasses

    from paradigms.data import load_images
    from paradigms.errors import UserError
    from paradigms.data import subset

    data = load_images("digits")
    x, y, vx, vy, _ = subset.select(data, config("supervised", ["train_size=500", "val_size=200"]))
    assert torch.equal(x, data.train_x[:500]) and torch.equal(y, data.train_y[:500])  # the same training images
    assert torch.equal(vx, data.train_x[500:700]) and torch.equal(vy, data.train_y[500:700])  # the next 200
    x, _, vx, _, _ = subset.select(data, config("supervised", ["val_size=100"]))  # no train_size: the last 100
    assert len(x) == data.num_train - 100 and torch.equal(vx, data.train_x[-100:])
    with pytest.raises(UserError, match=r"val_size=2000 with train_size=500 needs 2,500 training images"):
        subset.select(data, config("supervised", ["train_size=500", "val_size=2000"]))
    # with the test set taken away, a run with val_size still trains, and reports validation metrics only
    import paradigms.data

    # every image recipe loads its dataset through paradigms.data.load_images (recipes.ImageRecipe)
    monkeypatch.setattr(paradigms.data, "load_images", lambda *a, **k: dataclasses.replace(data, test_x=None, test_y=None))
    final = Trainer(config("supervised", ["train.epochs=2", "train_size=500", "val_size=300", "model.width=1"]),
                    tmp_path / "val", progress=False).fit()
    assert 0.3 < final["val/acc"] <= 1 and final["val/loss"] > 0 and "test/acc" not in final


@pytest.mark.slow
@pytest.mark.parametrize("dataset,floor", [("mnist", 0.96), ("fashion-mnist", 0.78), ("cifar10", 0.35)])
def test_quick_preset_learns_the_real_datasets(shared_data, tmp_path, dataset, floor):
    """One short epoch on 10,000 real training images: far above chance (10%) on the full test set."""
    cfg = config("supervised", ["train.epochs=1", "train_size=10000"], dataset=dataset, data_dir=str(shared_data))
    final = Trainer(cfg, tmp_path / dataset, progress=False).fit()
    assert final["test/acc"] > floor


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_the_papers_configs_resolve_and_build_the_papers_networks(path):
    """configs/ holds the papers' full settings (run on a GPU): each must still load, and build an 11.2M network."""
    from paradigms import config as configlib
    from paradigms import recipes

    data = configlib.load_yaml(path)
    cfg = configlib.resolve(recipes.get(data["recipe"]), "quick", path, [], {})
    assert cfg.preset == "none" and cfg.train.epochs == 200 and cfg.train.batch_size == 128
    net = build_net(cfg.model, (3, 32, 32), 10)
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(11.17e6, rel=0.01)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
