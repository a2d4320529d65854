"""Contrastive objectives (issue 18 begun): each against its paper's formula written out directly."""

import math

import pytest
import torch
import torch.nn.functional as F

from paradigms.contrastive import info_nce, mine_triplets, nt_xent, triplet_loss


def test_nt_xent_equals_a_direct_loop_over_the_pairs():
    torch.manual_seed(0)
    z1, z2 = torch.randn(5, 8), torch.randn(5, 8)
    tau = 0.5
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = 5
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        num = math.exp(float(z[i] @ z[j]) / tau)
        den = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(2 * n) if k != i)
        total += -math.log(num / den)
    assert nt_xent(z1, z2, tau).item() == pytest.approx(total / (2 * n), rel=1e-5)
    assert nt_xent(z1, z1 + 1e-3 * torch.randn(5, 8), 0.1) < nt_xent(z1, z2, 0.1)   # matching views: low loss


def test_info_nce_equals_its_formula_and_sends_no_gradient_to_keys_or_queue():
    torch.manual_seed(1)
    q = torch.randn(4, 6, requires_grad=True)
    k, queue = torch.randn(4, 6, requires_grad=True), torch.randn(7, 6, requires_grad=True)
    loss = info_nce(q, k, queue, 0.2)
    qn, kn, Q = (F.normalize(t.detach(), dim=1) for t in (q, k, queue))
    direct = 0.0
    for i in range(4):
        pos = math.exp(float(qn[i] @ kn[i]) / 0.2)
        neg = sum(math.exp(float(qn[i] @ Q[j]) / 0.2) for j in range(7))
        direct += -math.log(pos / (pos + neg))
    assert loss.item() == pytest.approx(direct / 4, rel=1e-5)
    loss.backward()
    assert q.grad is not None and k.grad is None and queue.grad is None


def test_triplet_loss_is_zero_when_every_negative_is_farther_by_the_margin():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[0.99, 0.1], [0.1, 0.99]])                            # close to the anchors
    n = torch.tensor([[-1.0, 0.0], [0.0, -1.0]])                            # opposite: d(a, n) = 4
    assert triplet_loss(a, p, n, margin=0.2).item() == 0.0
    assert triplet_loss(a, n, p, margin=0.2).item() > 3.5                   # swapped: ~ 4 - 0.01 + 0.2
    ap = (F.normalize(a) - F.normalize(n)).pow(2).sum(1)                    # the formula, squared distances
    an = (F.normalize(a) - F.normalize(p)).pow(2).sum(1)
    assert triplet_loss(a, n, p, margin=0.2).item() == pytest.approx(float((ap - an + 0.2).clamp_min(0).mean()))


def batch():
    """Six points on the unit circle, two identities: A at 0, 10 and 60 degrees, B at 30, 90 and 180 degrees."""
    deg = torch.tensor([0.0, 10.0, 60.0, 30.0, 90.0, 180.0])
    e = torch.stack([torch.cos(deg.deg2rad()), torch.sin(deg.deg2rad())], 1)
    return e, torch.tensor([0, 0, 0, 1, 1, 1])


def test_each_miner_picks_what_its_name_says():
    e, y = batch()
    a, p, n = mine_triplets(e, y, "batch-all")                              # every valid triplet: 6 anchors x 2 x 3
    assert len(a) == 36 and (y[a] == y[p]).all() and (a != p).all() and (y[a] != y[n]).all()
    a, p, n = mine_triplets(e, y, "batch-hard")                             # anchor 0: farthest A is 60, closest B 30
    assert a.tolist() == [0, 1, 2, 3, 4, 5]
    assert (p[0], n[0]) == (2, 3) and (p[5], n[5]) == (3, 2)                # anchor 180: farthest B is 30; closest A 60
    a, p, n = mine_triplets(e, y, "semi-hard", margin=0.2)
    pairs = {(int(i), int(j)): int(k) for i, j, k in zip(a, p, n)}
    # anchor 0, positive 10 (d = 0.03): the closest negative farther than it is 30 (d = 0.27)
    assert pairs[0, 1] == 3
    # anchor 0, positive 60 (d = 1.0): 30 is nearer than the positive (0.27), so the closest farther one is 90 (2.0)
    assert pairs[0, 2] == 4
    # anchor 60, positive 0 (d = 1.0): every negative (30: 0.27, 90: 0.27, 180: 3.0) -> the closest farther is 180
    assert pairs[2, 0] == 5


def test_mining_says_when_the_batch_cannot_give_triplets():
    e = torch.randn(4, 3)
    with pytest.raises(ValueError, match="two images of a person"):
        mine_triplets(e, torch.tensor([0, 1, 2, 3]), "batch-hard")
    with pytest.raises(ValueError, match="same identity"):
        mine_triplets(e, torch.tensor([0, 0, 0, 0]), "semi-hard")
    with pytest.raises(ValueError, match="batch-all, batch-hard, semi-hard"):
        mine_triplets(e, torch.tensor([0, 0, 1, 1]), "hardest")


def test_mined_triplets_train_embeddings_apart():
    torch.manual_seed(0)
    x = torch.randn(40, 5)
    y = torch.arange(40) % 4
    x = x + 2 * F.one_hot(y, 5).float()                                     # four loose clusters
    net = torch.nn.Linear(5, 3)
    opt = torch.optim.Adam(net.parameters(), 1e-2)

    def every_triplet() -> float:                                           # a fixed yardstick: all valid triplets
        with torch.no_grad():
            e = net(x)
            return float(triplet_loss(*(e[i] for i in mine_triplets(e, y, "batch-all"))))

    before = every_triplet()
    for _ in range(100):
        e = net(x)
        a, p, n = mine_triplets(e, y, "semi-hard")
        loss = triplet_loss(e[a], e[p], e[n])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert every_triplet() < 0.5 * before


def test_the_knn_classifier_matches_scikit_learns_on_toy_features():
    import numpy as np
    from sklearn.neighbors import KNeighborsClassifier

    from paradigms.evaluate import knn_predict

    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 6, generator=g)
    y = torch.randint(0, 4, (300,), generator=g)
    x = centres[y] + 0.9 * torch.randn(300, 6, generator=g)
    test = torch.randn(80, 6, generator=g) + centres[torch.randint(0, 4, (80,), generator=g)]
    for k, t in ((1, 0.1), (15, 0.1), (50, 0.5)):
        ours = knn_predict(x, y, test, 4, k=k, temperature=t, chunk=32).numpy()
        ref = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute",
                                   weights=lambda d, t=t: np.exp((1 - d) / t)).fit(x.numpy(), y.numpy())
        assert (ours == ref.predict(test.numpy())).mean() == 1.0


def test_the_key_queue_is_first_in_first_out_and_is_restored_exactly():
    from paradigms.contrastive import KeyQueue

    q = KeyQueue(6, 2, torch.Generator().manual_seed(0))
    batches = [torch.full((2, 2), float(i)) for i in range(1, 5)]
    for b in batches[:3]:
        q.push(b)
    assert q()[:, 0].tolist() == [1, 1, 2, 2, 3, 3]                         # full: oldest first
    q.push(batches[3])                                                      # the oldest batch leaves
    assert q()[:, 0].tolist() == [2, 2, 3, 3, 4, 4]
    saved = {k: v.clone() for k, v in q.state_dict().items()}
    again = KeyQueue(6, 2)
    again.load_state_dict(saved)
    assert torch.equal(again(), q()) and int(again.ptr) == int(q.ptr)
    again.push(torch.full((2, 2), 5.0))
    q.push(torch.full((2, 2), 5.0))
    assert torch.equal(again(), q())                                        # it goes on from the same place
    with pytest.raises(ValueError, match="not a multiple of the batch"):
        q.push(torch.zeros(4, 2))


def test_the_linear_probe_leaves_the_encoder_bit_identical(tmp_path):
    from paradigms.api import run
    from paradigms.engine import checkpoint as ckpt

    net = ["model.name=resnet", "model.width=4"]                            # batch norm: its statistics must hold too
    source = run("supervised", "digits", out=tmp_path / "src",
                 sets=[*net, "train.epochs=1", "train.figures=false"]).run_dir
    probe = run("finetune", "digits", out=tmp_path / "probe", source=str(source),
                sets=["transfer.strategy=linear-probe", "train.epochs=2", "train.figures=false"]).run_dir
    before = ckpt.module_weights(source / "checkpoints", "model")
    after = ckpt.module_weights(probe / "checkpoints", "model")
    body = [k for k in before if not k.startswith("head.")]
    assert any("running_mean" in k for k in body)
    assert body and all(torch.equal(before[k], after[k]) for k in body)   # weights and batch-norm statistics alike
    assert not torch.equal(before["head.weight"], after["head.weight"])   # only the new head learned
