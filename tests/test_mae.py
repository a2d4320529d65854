"""Masked autoencoders (issue 17 begun): the masking, the encoder's input, the loss."""

import pytest
import torch

from paradigms.mae import MAE, masked_patch_loss, random_masking
from paradigms.nets import NetConfig, build_net


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
