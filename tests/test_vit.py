"""The Vision Transformer (issue 17 begun): patches, positions, and a ViT that every image recipe can train."""

import pytest
import torch

from paradigms.errors import UserError
from paradigms.nets import NetConfig, build_net
from paradigms.nets.vit import patchify, sincos_2d, unpatchify


def test_patchify_and_unpatchify_are_inverse_and_patches_are_row_major():
    x = torch.rand(2, 3, 8, 12)
    p = patchify(x, 4)
    assert p.shape == (2, 6, 48)
    assert torch.equal(unpatchify(p, 4, (3, 8, 12)), x)
    assert torch.equal(p[1, 4].view(4, 4, 3), x[1, :, 4:8, 4:8].permute(1, 2, 0))   # patch (row 1, column 1)


def test_2d_sine_cosine_positions_encode_row_and_column():
    pos = sincos_2d(16, 3, 4)                                           # 12 patches, width 16
    assert pos.shape == (12, 16)
    rows, cols = pos[:, :8], pos[:, 8:]
    assert torch.equal(rows[0], rows[3]) and not torch.equal(rows[0], rows[4])   # same row, then the next row
    assert torch.equal(cols[0], cols[4]) and not torch.equal(cols[0], cols[1])   # same column
    assert torch.allclose(pos[0], torch.tensor([0.0] * 4 + [1.0] * 4 + [0.0] * 4 + [1.0] * 4))  # sin 0, cos 0
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d(10, 2, 2)


@pytest.mark.parametrize("cls_token", [False, True])
def test_a_vit_is_a_classifier_of_patch_embedding_blocks_and_pooling(cls_token):
    net = build_net(NetConfig(name="vit", patch=2, dim=32, depth=3, heads=4, cls_token=cls_token), (1, 8, 8), 10)
    assert len(net.blocks) == 5 and net.embed.num_patches == 16
    x = torch.rand(4, 1, 8, 8)
    assert net(x).shape == (4, 10) and net.features(x).shape == (4, 32)
    tokens = net.embed(net.standardize(x))
    assert tokens.shape == (4, 16 + cls_token, 32)
    with pytest.raises(UserError, match=r"model.patch=3 does not divide the 8x8 images.*\[2, 4, 8\]"):
        build_net(NetConfig(name="vit", patch=3), (1, 8, 8), 10)


def test_supervised_trains_a_vit_from_scratch(tmp_path):
    from paradigms.api import run

    r = run("supervised", "digits", preset="none", out=tmp_path / "vit",
            sets=["model.name=vit", "model.patch=2", "model.dim=32", "model.depth=2", "model.heads=2", "train.epochs=10",
                  "optim.name=adamw", "optim.lr=3e-3", "optim.weight_decay=0.05", "train.figures=false"])
    assert r.metrics["test/acc"] > 0.5                                  # ten classes: chance is 0.1
