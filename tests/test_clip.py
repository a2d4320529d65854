"""CLIP's objective and zero-shot classifier (issue 19 begun): each against its formula written out."""

import math

import pytest
import torch
import torch.nn.functional as F

from paradigms.contrastive.clip import LogitScale, class_embeddings, clip_loss, zero_shot_probs


def test_clip_loss_is_symmetric_and_equals_the_cross_entropy_both_ways_by_hand():
    torch.manual_seed(0)
    img, txt = torch.randn(4, 6), torch.randn(4, 6)
    s = 10.0
    a, b = F.normalize(img, dim=1), F.normalize(txt, dim=1)
    sim = [[s * float(a[i] @ b[j]) for j in range(4)] for i in range(4)]
    image_to_text = -sum(sim[i][i] - math.log(sum(math.exp(v) for v in sim[i])) for i in range(4)) / 4
    text_to_image = -sum(sim[j][j] - math.log(sum(math.exp(sim[i][j]) for i in range(4))) for j in range(4)) / 4
    assert clip_loss(img, txt, s).item() == pytest.approx((image_to_text + text_to_image) / 2, rel=1e-5)
    assert clip_loss(txt, img, s).item() == pytest.approx(clip_loss(img, txt, s).item(), rel=1e-6)   # symmetric
    assert clip_loss(img, img + 1e-3, s) < clip_loss(img, txt, s)          # matched pairs: low loss
    with pytest.raises(ValueError, match="differ"):
        clip_loss(img, txt[:3], s)


def test_the_logit_scale_starts_at_one_over_0_07_and_is_clipped_at_100():
    scale = LogitScale()
    assert scale().item() == pytest.approx(1 / 0.07)
    with torch.no_grad():
        scale.t.fill_(10.0)
    assert scale().item() == 100.0
    torch.manual_seed(0)
    loss = clip_loss(torch.randn(3, 4), torch.randn(3, 4), LogitScale()())
    loss.backward()                                                       # the temperature is learned


def test_the_prompt_ensemble_averages_normalised_embeddings_and_renormalises():
    table = {"a photo of a cat.": torch.tensor([2.0, 0.0]), "a drawing of a cat.": torch.tensor([0.0, 5.0]),
             "a photo of a dog.": torch.tensor([-1.0, 0.0]), "a drawing of a dog.": torch.tensor([-3.0, 0.0])}

    def encode(texts):
        return torch.stack([table[t] for t in texts])

    emb = class_embeddings(encode, ["cat", "dog"], ["a photo of a {}.", "a drawing of a {}."])
    assert torch.allclose(emb[0], torch.tensor([1.0, 1.0]) / math.sqrt(2))  # not (2, 5): each prompt counts alike
    assert torch.allclose(emb[1], torch.tensor([-1.0, 0.0]))
    assert torch.allclose(emb.norm(dim=1), torch.ones(2))
    one = class_embeddings(encode, ["cat"], ["a photo of a {}."])
    assert torch.allclose(one[0], torch.tensor([1.0, 0.0]))
    probs = zero_shot_probs(torch.tensor([[3.0, 0.1], [-2.0, 0.0]]), emb)
    assert probs.argmax(1).tolist() == [0, 1] and torch.allclose(probs.sum(1), torch.ones(2))
    for bad in ([], ):
        with pytest.raises(ValueError, match="class names"):
            class_embeddings(encode, bad)
