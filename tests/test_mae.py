"""Masked autoencoders (issue 17 begun): the masking, the encoder's input, the loss."""

import json

import pytest
import torch

from paradigms.mae import MAE, masked_patch_loss, random_masking
from paradigms.nets import NetConfig, ViT, build_net


def vit(cls_token=False):
    torch.manual_seed(0)
    return build_net(NetConfig(name="vit", patch=2, dim=32, depth=2, heads=4, cls_token=cls_token), (1, 8, 8), 10)


def test_the_mask_ratio_is_honoured_per_image_and_a_seed_gives_the_same_masks():
    keep, mask = random_masking(64, 16, 0.75, torch.Generator().manual_seed(0))
    assert keep.shape == (64, 4) and (mask.sum(1) == 12).all()            # every image hides 12 of 16
    assert (keep.diff(dim=1) > 0).all()                                   # distinct, in order
    assert not mask.gather(1, keep).any()                                 # the kept are exactly the unmasked
    again, _ = random_masking(64, 16, 0.75, torch.Generator().manual_seed(0))
    other, _ = random_masking(64, 16, 0.75, torch.Generator().manual_seed(1))
    assert torch.equal(keep, again) and not torch.equal(keep, other)
    assert len({tuple(k) for k in keep.tolist()}) > 30                    # chosen afresh for each image
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match="mask_ratio"):
            random_masking(2, 16, bad)


@pytest.mark.parametrize("cls_token", [False, True])
def test_the_encoder_receives_exactly_the_visible_patches(cls_token):
    net = vit(cls_token)
    mae = MAE(net, decoder_dim=16, decoder_depth=1, decoder_heads=2)
    x = torch.rand(3, 1, 8, 8)
    keep, _ = random_masking(3, 16, 0.75, torch.Generator().manual_seed(2))
    seen = {}
    net.layers[0].register_forward_pre_hook(lambda m, args: seen.setdefault("h", args[0]))
    pred = mae(x, keep)
    h = seen["h"]
    assert h.shape == (3, 4 + cls_token, 32)                              # the count: 4 visible (+ the class token)
    all_tokens = net.embed.tokens(net.standardize(x))                     # (3, 16, 32) every patch, with positions
    for i in range(3):                                                    # the identity: those patches, in order
        assert torch.allclose(h[i, cls_token:], all_tokens[i, keep[i]])
    assert pred.shape == (3, 16, 4)                                       # every patch's 2 x 2 pixels


def test_the_loss_ignores_the_visible_patches():
    torch.manual_seed(0)
    pred, target = torch.randn(2, 16, 12), torch.randn(2, 16, 12)
    _, mask = random_masking(2, 16, 0.75, torch.Generator().manual_seed(0))
    base = masked_patch_loss(pred, target, mask)
    moved = pred.clone()
    moved[~mask] += 5.0
    assert torch.allclose(masked_patch_loss(moved, target, mask), base)   # visible patches do not count
    moved[mask] += 1.0
    assert not torch.allclose(masked_patch_loss(moved, target, mask), base)
    expected = ((pred - target) ** 2).mean(-1)[mask].mean()
    assert torch.allclose(base, expected)
    t = target - target.mean(-1, keepdim=True)
    t = t / (target.var(-1, keepdim=True) + 1e-6).sqrt()
    assert torch.allclose(masked_patch_loss(pred, target, mask, norm_pix=True), ((pred - t) ** 2).mean(-1)[mask].mean())


def test_a_few_steps_of_mae_lower_the_loss_on_masked_patches():
    mae = MAE(vit(), decoder_dim=16, decoder_depth=1, decoder_heads=2)
    x = torch.rand(32, 1, 8, 8).round()                                  # a fixed batch to fit
    opt = torch.optim.AdamW(mae.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(60):
        keep, mask = random_masking(32, 16, 0.5, g)
        loss = masked_patch_loss(mae(x, keep), mae.target(x), mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-10:]) / 10 < 0.8 * sum(losses[:10]) / 10


# -- the mae recipe ------------------------------------------------------------------------------------
TINY = ["model.dim=32", "model.depth=2", "model.heads=2", "decoder_dim=16", "decoder_depth=1", "decoder_heads=2",
        "train_size=512", "train.batch_size=64", "eval_n=256"]


def test_the_mae_recipe_learns_draws_its_figures_and_gives_its_encoder(tmp_path, capsys):
    import paradigms
    from tests.test_cli import run_cli

    code, out, err = run_cli(capsys, "run", "mae", "--out", str(tmp_path / "mae"), *sum((["--set", s] for s in
                             [*TINY, "train.epochs=6"]), []))
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / "mae" / "metrics.jsonl").read_text().splitlines()]
    evals = [r["test/masked_loss"] for r in rows if "test/masked_loss" in r]
    assert len(evals) >= 2 and evals[-1] < 0.9 * evals[0]                 # the hidden patches are predicted better
    final = json.loads((tmp_path / "mae" / "final.json").read_text())
    assert {"test/masked_loss_25", "test/masked_loss_90"} <= set(final.get("metrics", final))
    figures = {p.name for p in (tmp_path / "mae" / "figures").iterdir()}
    assert {"reconstructions.png", "mask_ratios.png"} <= figures
    encoder = paradigms.load(tmp_path / "mae")                            # the ViT, its pooled feature out
    assert encoder(torch.rand(3, 1, 8, 8)).shape == (3, 32)


def test_same_seed_same_masks_and_metrics_and_a_resumed_run_draws_the_same_masks(tmp_path):
    from paradigms.api import run
    from tests.test_base import interrupted_then_resumed

    sets = [*TINY, "train.epochs=2", "train.figures=false"]
    a = run("mae", "digits", out=tmp_path / "a", sets=sets).metrics
    b = run("mae", "digits", out=tmp_path / "b", sets=sets).metrics
    c = run("mae", "digits", out=tmp_path / "c", sets=sets, seed=1).metrics
    assert a == b and a["test/masked_loss"] != c["test/masked_loss"]
    final, _ = interrupted_then_resumed(tmp_path, "mae", sets, 11)
    assert final["test/masked_loss"] == a["test/masked_loss"]


def test_a_supervised_vit_and_an_mae_encoder_load_into_each_other_through_finetune(tmp_path):
    from paradigms.api import load, run
    from paradigms.engine import checkpoint as ckpt
    from paradigms.mae.recipe import encoder_net

    vit = ["model.name=vit", "model.patch=2", "model.dim=32", "model.depth=2", "model.heads=2"]
    sup = run("supervised", "digits", preset="none", out=tmp_path / "sup",
              sets=[*vit, "train.epochs=1", "train_size=256", "train.figures=false"]).run_dir
    mae = run("mae", "digits", out=tmp_path / "mae", sets=[*TINY, "train.epochs=1", "train.figures=false"]).run_dir
    # the same layout: the MAE encoder is a supervised ViT without its head, and loads strictly into one
    sup_state = ckpt.module_weights(sup / "checkpoints", "model")
    enc_state = ckpt.module_weights(mae / "checkpoints", "encoder")
    assert set(enc_state) == {k for k in sup_state if not k.startswith("head.")}
    encoder_net(NetConfig(name="vit", patch=2, dim=32, depth=2, heads=2), (1, 8, 8)).load_state_dict(
        {k: v for k, v in sup_state.items() if not k.startswith("head.")})
    for source, state in ((sup, sup_state), (mae, enc_state)):
        ft = run("finetune", "digits", preset="none", out=tmp_path / f"ft-{source.name}", source=str(source),
                 sets=["train.epochs=1", "train_size=256", "train.figures=false"]).run_dir
        report = json.loads((ft / "transfer.json").read_text())
        body = {k for k in state if not k.startswith("head.")}
        assert set(report["loaded"]) == body and report["head"] == "new"  # every tensor but the head, from the source
        net = load(ft)
        assert isinstance(net, ViT) and net.depth == 2 and net(torch.rand(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("sets,words", [
    (["mask_ratio=1.0"], ["mask_ratio = 1.0", "< 1"]),
    (["mask_ratio=0"], ["mask_ratio = 0", "> 0"]),
    (["model.patch=3"], ["model.patch=3 does not divide the 8x8 images", "[2, 4, 8]"]),
    (["model.name=lenet5"], ["model.name=vit"]),
    (["ratios=[0.5,1.5]"], ["(0, 1)", "1.5"]),
])
def test_bad_mae_settings_are_one_line_and_exit_2(capsys, sets, words):
    from tests.test_cli import error_line

    line = error_line(capsys, "run", "mae", *sum((["--set", s] for s in sets), []))
    assert all(w in line for w in words), line


def test_reconstruction_gives_reconstructs_pictures_and_the_masked_patch_loss(tmp_path):
    from paradigms.api import run
    from paradigms.engine.trainer import load_trained

    done = run("mae", "digits", out=tmp_path / "mae", sets=[*TINY, "train.epochs=1", "train.figures=false"])
    mae = load_trained(done.run_dir, "cpu")
    x = next(iter(mae.test_loader.epoch(0)))[0][:4]
    masked, pasted, mask, loss = mae.reconstruction(x, 0.6, torch.Generator().manual_seed(5))
    again = mae.reconstruct(x, 0.6, torch.Generator().manual_seed(5))
    assert torch.equal(masked, again[0]) and torch.equal(pasted, again[1])
    keep, expected_mask = random_masking(4, 16, 0.6, torch.Generator().manual_seed(5))
    assert torch.equal(mask, expected_mask) and (mask.sum(1) == 10).all()  # round(16 x 0.4) = 6 patches seen
    with torch.no_grad():
        pred = mae.mae(x, keep)                                          # (4, 16, 4) every patch predicted
    target = mae.mae.target(x)
    by_hand = ((pred - target) ** 2).mean(-1)[mask].mean()               # the hidden patches' squared error
    assert loss == pytest.approx(float(by_hand), rel=1e-5)
    assert loss == pytest.approx(float(masked_patch_loss(pred, target, mask)), rel=1e-6)
