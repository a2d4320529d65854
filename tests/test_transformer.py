"""The one transformer (paradigms.nets.transformer): causal and bidirectional attention, padding, generation."""

import pytest
import torch

from paradigms.nets.transformer import Transformer, TransformerConfig


def net(**kw) -> Transformer:
    torch.manual_seed(0)
    return Transformer(TransformerConfig(**{"vocab_size": 50, "block_size": 16, "n_layer": 2, "n_head": 2,
                                            "n_embd": 32, **kw})).eval()


@pytest.mark.parametrize("norm_first", [True, False])
def test_causal_attention_never_looks_ahead(norm_first):
    m = net(causal=True, norm_first=norm_first)
    ids = torch.randint(0, 50, (3, 12))
    changed = ids.clone()
    changed[:, 7] = (ids[:, 7] + 1) % 50                               # change one future token
    a, b = m(ids), m(changed)
    assert a.shape == (3, 12, 50)
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-6)              # the positions before it: unchanged
    assert not torch.allclose(a[:, 7:], b[:, 7:], atol=1e-4)          # from it on: changed


def test_bidirectional_attention_looks_both_ways():
    m = net(causal=False, norm_first=False)
    ids = torch.randint(0, 50, (3, 12))
    changed = ids.clone()
    changed[:, 7] = (ids[:, 7] + 1) % 50
    diff = (m(ids) - m(changed)).abs().amax(dim=(0, 2))               # (T,)
    assert bool((diff > 1e-5).all()), diff                            # every position saw the change


@pytest.mark.parametrize("causal", [True, False])
def test_padding_is_invisible_to_the_real_tokens(causal):
    m = net(causal=causal, norm_first=not causal)
    ids = torch.randint(0, 50, (2, 10))
    keep = torch.ones(2, 10, dtype=torch.bool)
    keep[:, 6:] = False                                               # the last 4 positions are padding
    padded = ids.clone()
    padded[:, 6:] = torch.randint(0, 50, (2, 4))                      # whatever the pads hold
    a, b = m.hidden(ids, keep), m.hidden(padded, keep)
    assert torch.allclose(a[:, :6], b[:, :6], atol=1e-6)
    assert torch.allclose(a[:, :6], m.hidden(ids[:, :6]), atol=1e-5)  # the same as no pads at all


def test_the_output_layer_is_tied_to_the_token_embeddings_and_gpt2_init():
    m = net()
    h = m.hidden(torch.randint(0, 50, (2, 5)))
    assert torch.allclose(m.logits(h), h @ m.wte.weight.T)              # the output layer is E_tok itself
    assert "head.weight" not in m.state_dict()                          # stored once
    assert m.num_params() == sum(p.numel() for p in m.parameters())
    assert abs(float(m.blocks[0].attn.proj.weight.detach().std()) - 0.02 / 2) < 0.003   # 0.02 / sqrt(2 L), L = 2


def test_generation_is_reproducible_under_a_seed_and_respects_top_k():
    m = net()
    start = torch.zeros(2, 1, dtype=torch.long)

    def draw(seed, **kw):
        g = torch.Generator().manual_seed(seed)
        return torch.stack(list(m.generate(start, 30, generator=g, **kw)), dim=1)

    assert torch.equal(draw(3), draw(3)) and not torch.equal(draw(3), draw(4))
    assert draw(3).shape == (2, 30)                                   # past the block size of 16: a sliding context
    greedy = draw(5, top_k=1)
    assert torch.equal(greedy, draw(6, top_k=1))                      # top_k = 1 is argmax: no randomness left
    with pytest.raises(ValueError, match="temperature"):
        next(m.generate(start, 1, temperature=0))
    with pytest.raises(ValueError, match="causal"):
        next(net(causal=False).generate(start, 1))


def test_a_sequence_longer_than_the_block_size_is_refused():
    with pytest.raises(ValueError, match="block size 16"):
        net()(torch.zeros(1, 17, dtype=torch.long))
