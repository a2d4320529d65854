"""Self-supervised language models (issue 16): BERT's masking."""

import torch
import torch.nn.functional as F

from paradigms.language import IGNORE, mask_tokens, masked_lm_loss


def test_mask_statistics_are_15_percent_and_80_10_10_on_a_large_batch():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (256, 512), generator=g)             # 131,072 tokens; ids 0-4 are special
    inputs, targets = mask_tokens(ids, mask_id=4, vocab_size=1000, generator=g)
    chosen = targets != IGNORE
    n = int(chosen.sum())
    assert abs(n / ids.numel() - 0.15) < 0.005
    assert torch.equal(targets[chosen], ids[chosen])                  # the targets are the original tokens
    masked = (inputs == 4) & chosen
    same = (inputs == ids) & chosen
    other = chosen & ~masked & ~same
    assert abs(masked.sum() / n - 0.8) < 0.01
    assert abs(same.sum() / n - 0.1) < 0.01                           # includes the random draws that hit the same id
    assert abs(other.sum() / n - 0.1) < 0.01
    assert torch.equal(inputs[~chosen], ids[~chosen])                 # the unchosen are untouched


def test_positions_not_kept_are_never_chosen():
    ids = torch.randint(0, 100, (64, 64))
    keep = torch.ones_like(ids, dtype=torch.bool)
    keep[:, 0] = keep[:, -8:] = False                                 # [CLS] and padding
    inputs, targets = mask_tokens(ids, 1, 100, keep=keep, generator=torch.Generator().manual_seed(1))
    assert (targets[~keep] == IGNORE).all() and torch.equal(inputs[~keep], ids[~keep])


def test_the_loss_ignores_the_positions_not_chosen():
    torch.manual_seed(0)
    logits = torch.randn(4, 10, 30)
    targets = torch.full((4, 10), IGNORE)
    targets[0, 3], targets[2, 7] = 5, 11
    expected = (F.cross_entropy(logits[0, 3], torch.tensor(5)) + F.cross_entropy(logits[2, 7], torch.tensor(11))) / 2
    assert torch.allclose(masked_lm_loss(logits, targets), expected)
    scrambled = logits.clone()
    scrambled[targets == IGNORE] = torch.randn_like(scrambled[targets == IGNORE])
    assert torch.allclose(masked_lm_loss(scrambled, targets), expected)   # what the others predict does not count
