"""The contrastive recipes (issue 18): triplet, simclr, moco, and the one evaluation protocol for encoders."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from paradigms import recipes
from paradigms.api import load, run
from paradigms.contrastive.moco import SplitBatchNorm
from paradigms.contrastive.verification import (balanced_accuracy, best_threshold, identity_distances, pair_distances,
                                                recall_at_1, verify)
from paradigms.engine import Trainer
from paradigms.evaluate import evaluate_encoder, linear_probe, nearest, probe_run

from .test_base import interrupted_then_resumed
from .test_cli import error_line
from .test_engine import config

TINY = ["train.epochs=1", "train_size=256", "train.batch_size=64", "model.width=4", "train.figures=false"]
MOCO = [*TINY, "queue_size=256", "bn_splits=4", "proj_dim=16"]


def test_moco_key_encoder_gets_no_gradient_and_moves_by_the_momentum_rule(tmp_path):
    t = Trainer(config("moco", [*MOCO, "momentum=0.9"]), tmp_path / "m", progress=False)
    r = t.recipe
    batch = next(iter(r.batches(0)))
    r.train_step(batch, 0)                                                # the key encoder now differs from f_q
    q0 = [p.detach().clone() for p in r.query.parameters()]
    k0 = [p.detach().clone() for p in r.key.parameters()]
    r.train_step(batch, 1)
    for kp, k, q in zip(r.key.parameters(), k0, q0):
        assert kp.grad is None and not kp.requires_grad                   # no gradient reaches the key encoder
        assert torch.allclose(kp, 0.9 * k + 0.1 * q, atol=1e-6)           # theta_k <- m theta_k + (1 - m) theta_q
    assert any(not torch.equal(a, b) for a, b in zip(q0, r.query.parameters()))   # the query encoder trained


def test_moco_resumes_with_the_same_queue_and_the_same_metrics(tmp_path):
    sets = [*MOCO, "train.epochs=2"]
    whole = Trainer(config("moco", [*sets, "train.log_every=1"]), tmp_path / "whole", progress=False)
    expected = whole.fit()
    final, resumed = interrupted_then_resumed(tmp_path, "moco", sets, stop_at=5)
    assert final == expected
    a, b = whole.recipe.queue, resumed.recipe.queue
    assert torch.equal(a.keys, b.keys) and int(a.ptr) == int(b.ptr)      # the negatives survive the interruption
    assert int(a.ptr) == (8 * 64) % 256                                    # 8 batches of 64 pushed into 256 slots


def test_split_batchnorm_normalises_each_group_on_its_own():
    torch.manual_seed(0)
    bn = SplitBatchNorm(3, 2)
    x = torch.randn(8, 3, 4, 4) * 3 + 1
    out = bn(x)
    for g in range(2):                                                     # group g: samples g, g + 2, ...
        part = x[g::2]
        ref = (part - part.mean((0, 2, 3), keepdim=True)) / (part.var((0, 2, 3), unbiased=False, keepdim=True)
                                                             + bn.eps).sqrt()
        assert torch.allclose(out[g::2], ref, atol=1e-4)
    plain = torch.nn.BatchNorm2d(3)
    plain.load_state_dict(bn.state_dict())                                 # the same keys as a plain BN
    bn.eval(), plain.eval()
    assert torch.allclose(bn(x), plain(x))


def test_simclr_same_seed_same_metrics_and_its_encoder_loads(tmp_path):
    a = run("simclr", "digits", out=tmp_path / "a", sets=[*TINY[:-1], "train.log_every=1"], seed=3)
    b = run("simclr", "digits", out=tmp_path / "b", sets=TINY, seed=3)
    c = run("simclr", "digits", out=tmp_path / "c", sets=TINY, seed=4)
    assert a.metrics == b.metrics and a.metrics != c.metrics
    assert {"test/knn_acc", "test/probe_acc"} <= set(a.metrics)
    for fig in ("views", "embedding"):
        assert (a.run_dir / "figures" / f"{fig}.png").is_file()
    net = load(a.run_dir)
    assert net(torch.rand(2, 1, 8, 8)).shape == (2, net.embed_dim)         # the feature, no projection head
    rows = [json.loads(line) for line in (a.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if r["split"] == "train"]
    assert losses[-1] < losses[0]                                         # NT-Xent falls from about log(2N - 1)


def test_simclr_learns_from_a_folder_of_unlabelled_images(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(40):
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    result = run("simclr", f"imagefolder:{folder}", out=tmp_path / "r",
                 sets=["train.epochs=1", "train.batch_size=16", "model.width=4", "train.figures=false"])
    assert result.metrics == {}                                          # no labels: nothing to classify, no error
    assert (result.run_dir / "checkpoints").is_dir()


def test_triplet_split_never_shows_the_test_people_and_measures_them(tmp_path):
    t = Trainer(config("triplet", ["train.epochs=1", "train.figures=false"], dataset="digits"), tmp_path / "t",
                progress=False)
    r = t.recipe
    train, val, test = (set(r.parts[p][1].tolist()) for p in ("train", "val", "test"))
    assert not train & test and not train & val and not val & test and len(test) == 3 and len(val) == 2
    x, y = next(iter(r.batches(0)))
    counts = torch.bincount(y)
    assert set(counts[counts > 0].tolist()) == {r.cfg.images_per_person}   # P people x K images
    assert set(y.tolist()) <= train
    metrics = t.fit()
    for k in ("verify_acc", "recall1", "pixels_verify_acc", "pca_recall1", "untrained_verify_acc"):
        assert 0 <= metrics[f"test/{k}"] <= 1


def test_the_verification_measures_on_hand_made_points():
    emb = torch.tensor([[0.0, 0.0], [0.1, 0.0], [3.0, 0.0], [3.1, 0.0], [0.05, 0.0]])
    y = torch.tensor([0, 0, 1, 1, 1])                                       # the last point sits among the 0s
    dist, same = pair_distances(emb, y)
    assert len(dist) == 10 and int(same.sum()) == 4
    t = best_threshold(dist, same)
    brute = max(balanced_accuracy(dist, same, float(c)) for c in dist.tolist() + [-1.0, 100.0])
    assert balanced_accuracy(dist, same, t) == pytest.approx(brute)       # no cut does better
    assert recall_at_1(emb, y) == pytest.approx(2 / 5)                    # points 0, 1 and 4 find the wrong kind


def test_verify_and_the_people_table_on_hand_made_points():
    emb = torch.tensor([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0], [3.0, 2.0], [9.0, 9.0]])
    y = torch.tensor([4, 4, 7, 7, 7])
    assert verify(emb[0], emb[1], 1.0) == (pytest.approx(1.0), True)       # ||a - b||^2 = 1 <= 1: one person
    assert verify(emb[0], emb[2], 8.9) == (pytest.approx(9.0), False)      # 9 > 8.9: two people
    d = identity_distances(emb, y, [4, 7, 3])                              # 3: nobody has that label
    assert d[0, 0] == pytest.approx(1.0)                                   # the one pair of 4's images
    assert d[0, 1] == pytest.approx((9 + 13 + 162 + 10 + 10 + 145) / 6)  # every image of 4 against every image of 7
    assert d[1, 1] == pytest.approx((4 + 117 + 85) / 3)                   # 7's three pairs of different images
    assert torch.allclose(d[:2, :2], d[:2, :2].T)
    assert d[2].isnan().all() and d[:, 2].isnan().all()


def test_nearest_is_the_cosine_top_k_of_a_brute_force_ranking():
    g = torch.Generator().manual_seed(0)
    f, q = torch.randn(50, 6, generator=g) * torch.rand(50, 1, generator=g) * 5, torch.randn(3, 6, generator=g)
    sims, idx = nearest(f, q, 7)
    cos = torch.tensor([[float(a @ b / (a.norm() * b.norm())) for b in f] for a in q])    # (3, 50) by hand
    order = cos.argsort(1, descending=True)[:, :7]
    assert torch.equal(idx, order) and torch.allclose(sims, cos.gather(1, order), atol=1e-6)
    one_s, one_i = nearest(f, q[1], 3)                                     # one query: (k,)
    assert torch.equal(one_i, order[1, :3]) and one_s.shape == (3,)
    assert nearest(f, f[5], 1)[1].item() == 5 and nearest(f, q, 80)[1].shape == (3, 50)   # k cut to N


def test_a_triplet_runs_threshold_comes_back_from_its_weights(tmp_path):
    """The recipe's ``threshold`` on a loaded run is the one its evaluation chose and measured with."""
    from paradigms.data import unit
    from paradigms.engine.trainer import load_trained

    t = Trainer(config("triplet", ["train.epochs=1", "train.figures=false"], dataset="digits"), tmp_path / "t",
                progress=False)
    recorded = t.fit()["test/threshold"]
    trained, net = load_trained(tmp_path / "t", "cpu"), load(tmp_path / "t")   # paradigms.load: the embedding
    vx, vy = trained.parts["val"]
    with torch.no_grad():
        by_hand = best_threshold(*pair_distances(torch.nn.functional.normalize(net(unit(vx)), dim=1), vy))
    again = trained.threshold(lambda x: trained.embed(trained.net, x))
    assert again == pytest.approx(recorded, abs=1e-5) and by_hand == pytest.approx(recorded, abs=1e-5)
    assert trained.scores(lambda x: trained.embed(trained.net, x))["threshold"] == again


def test_linear_probe_is_deterministic_and_separates_separable_features():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (300,), generator=g)
    f = torch.randn(300, 5, generator=g) * 0.3 + torch.nn.functional.one_hot(y, 5).float() * 3
    acc = linear_probe(f[:200], y[:200], f[200:], y[200:], 3)
    assert acc == 1.0 and linear_probe(f[:200], y[:200], f[200:], y[200:], 3) == acc
    noise = torch.randn(300, 5, generator=g)
    assert linear_probe(noise[:200], y[:200], noise[200:], y[200:], 3) < 0.7


def test_one_protocol_measures_every_kind_of_encoder(tmp_path):
    scores = {}
    for recipe, sets in (("supervised", []), ("autoencoder", []), ("simclr", ["model.width=4"]),
                         ("mae", ["model.dim=32", "model.depth=1", "decoder_dim=16", "decoder_depth=1"])):
        r = run(recipe, "digits", out=tmp_path / recipe, sets=["train.epochs=1", "train.figures=false", *sets])
        scores[recipe] = probe_run(r.run_dir, train_size=1000)
        assert set(scores[recipe]) == {"knn_acc", "probe_acc"}
    assert all(0.1 < s["knn_acc"] <= 1 and 0.1 < s["probe_acc"] <= 1 for s in scores.values())
    net = load(tmp_path / "simclr")                                       # a ResNet: batch norm statistics too
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.rand(64, 1, 8, 8), torch.randint(0, 10, (64,))
    evaluate_encoder(net, [(x, y)], [(x, y)], 10, k=5)
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())   # left untouched
    assert scores["supervised"]["probe_acc"] > 0.5                        # a trained classifier's features are linear
    fresh = load(tmp_path / "supervised", untrained=True)                 # the baseline: the same network, initialised
    again = load(tmp_path / "supervised", untrained=True)
    trained = load(tmp_path / "supervised")
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), again.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), trained.state_dict().values()))
    before = probe_run(tmp_path / "supervised", train_size=1000, untrained=True)
    assert before["probe_acc"] < scores["supervised"]["probe_acc"]       # what training taught it


@pytest.mark.parametrize("recipe,sets,expected", [
    ("triplet", ["images_per_person=1"], "images_per_person"),
    ("triplet", ["train.batch_size=6", "images_per_person=4"], "at least two people"),
    ("triplet", ["mining=hardest"], "mining"),
    ("moco", ["queue_size=1000", "train.batch_size=64"], "not a multiple of the batch"),
    ("moco", ["bn_splits=3", "train.batch_size=64"], "bn_splits"),
    ("simclr", ["views=[mixup]"], "mixup"),
])
def test_bad_input_is_one_line(capsys, tmp_path, recipe, sets, expected):
    args = ["run", recipe, "--dataset", "digits", "--out", str(tmp_path / "x")]
    for s in sets:
        args += ["--set", s]
    assert expected in error_line(capsys, *args)


def test_triplet_on_unlabelled_images_says_it_needs_labels(capsys, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(10):
        Image.fromarray(np.full((8, 8), i * 20, dtype=np.uint8)).save(folder / f"{i}.png")
    line = error_line(capsys, "run", "triplet", "--dataset", f"imagefolder:{folder}", "--out", str(tmp_path / "t"))
    assert "no labels" in line and "simclr" in line


def test_the_recipes_are_listed_as_contrastive():
    every = recipes.all_recipes()
    assert {every[n].family for n in ("triplet", "simclr", "moco")} == {"contrastive"}


@pytest.mark.slow
def test_triplet_on_unseen_faces_beats_pixels_and_eigenfaces(tmp_path, shared_data):
    # a fifth of the quick preset, with batch-hard mining (BENCHMARKS.md's best): semi-hard's 20 epochs sit at the
    # eigenfaces' level, above or below them by the float rounding of the machine's thread count
    r = run("triplet", "olivetti-faces", out=tmp_path / "f", data_dir=str(shared_data),
            sets=["train.figures=false", "train.epochs=12", "train.eval_every=12", "mining=batch-hard"])
    m = r.metrics
    assert m["test/verify_acc"] > max(m["test/pixels_verify_acc"], m["test/pca_verify_acc"])
    assert m["test/verify_acc"] > m["test/untrained_verify_acc"]


def test_pretrain_finetune_attack_certify_is_one_pipeline_of_commands(capsys, tmp_path):
    """The README's composition, on digits: SimCLR, fine-tune on 10 labels per class under noise, attack, certify."""
    from .test_cli import run_cli

    ssl, ft = tmp_path / "simclr", tmp_path / "ft"
    for args in (["run", "simclr", "--out", str(ssl), "--set", "train.epochs=2", "--set", "model.width=4"],
                 ["run", "finetune", "--from", str(ssl), "--out", str(ft), "--set", "labels_per_class=10",
                  "--set", "train.epochs=10", "--set", "augment=[{gaussian_noise: {sigma: 0.25}}]"],
                 ["attack", str(ft), "--eps", "0.1", "--steps", "5", "--n", "50"],
                 ["certify", str(ft), "--sigma", "0.25", "--n", "200", "--n0", "20", "--max", "5"]):
        code, out, err = run_cli(capsys, *args)
        assert code == 0, err
    transfer = json.loads((ft / "transfer.json").read_text())
    assert transfer["loaded"] and any(layer["loaded"] for layer in transfer["layers"])   # SimCLR's encoder went in
    assert list(ft.glob("results/*-attack-*.json")), sorted(p.name for p in ft.iterdir())
    assert list(ft.glob("certif*")), sorted(p.name for p in ft.iterdir())
