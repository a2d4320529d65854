"""The contrastive panels over HTTP against the library on the same input: FaceNet's verification and distance table
(``triplet``), a SimCLR's and a MoCo's nearest images and views (``neighbours``), CLIP's text -> image search
(``retrieval``); runs trained for seconds on the embedded digits."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from paradigms.engine import Trainer  # noqa: E402

from .test_engine import config  # noqa: E402
from .test_lab_panels import drawing, lab_over, pixels  # noqa: E402,F401 - a fixture: a seven drawn on the canvas, as a PNG

VIEWS = ["train.epochs=1", "train_size=300", "train.batch_size=64", "model.width=4", "train.figures=false"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``triplet`` (digits: 3 unseen people, 2 for the threshold), ``simclr`` and ``moco`` (tiny encoders), ``clip``."""
    root = tmp_path_factory.mktemp("runs")
    for name, recipe, sets in (
            ("triplet", "triplet", ["train.epochs=1", "train.figures=false", "eval_n=300"]),
            ("simclr", "simclr", VIEWS),
            ("moco", "moco", [*VIEWS, "queue_size=256", "bn_splits=4", "proj_dim=16"]),
            ("clip", "clip", ["train.epochs=3", "train_size=600", "train.figures=false", "probe=false"])):
        Trainer(config(recipe, sets, dataset="digits"), root / name, progress=False).fit()
    return root


@pytest.fixture(scope="module")
def lab(runs):
    with lab_over(runs) as client:
        yield client


def ask(lab, panel, params, body=b""):
    r = lab.post(f"/api/panel/{panel}", params=params, content=body)
    assert r.status_code == 200, r.text
    return r.json()


def refused(lab, panel, params, body=b""):
    r = lab.post(f"/api/panel/{panel}", params=params, content=body)
    assert r.status_code == 400, r.text
    return r.json()["field"], r.json()["error"]


# -- triplet ----------------------------------------------------------------------------------------------------------
def test_triplet_gives_the_embeddings_distance_the_runs_threshold_and_the_lecture_table(lab, runs):
    import json

    from paradigms import load
    from paradigms.contrastive.verification import best_threshold, pair_distances
    from paradigms.data import unit
    from paradigms.engine.trainer import load_trained

    run = runs / "triplet"
    trained, net = load_trained(run, "cpu"), load(run)                  # the split; the embedding as any user has it
    (tx, ty), (vx, vy) = trained.parts["test"], trained.parts["val"]
    with torch.no_grad():
        emb = F.normalize(net(unit(tx)), dim=1)                          # (N, D) on the unit sphere
        threshold = best_threshold(*pair_distances(F.normalize(net(unit(vx)), dim=1), vy))
    assert threshold == pytest.approx(json.loads((run / "final.json").read_text())["test/threshold"], abs=1e-5)
    d = (emb[:, None] - emb[None]).pow(2).sum(-1)                        # every pair's squared distance
    near = int(torch.nonzero(d[0, 1:] <= threshold)[0]) + 1              # a pair on each side of the threshold
    far = int(torch.nonzero(d[0, 1:] > threshold)[0]) + 1
    names = trained.classes
    for b, verdict in ((near, "same person"), (far, "different people")):
        answer = ask(lab, "triplet", {"run": "triplet", "a": "0", "b": str(b)})
        assert answer["distance"] == pytest.approx(float(d[0, b]), abs=1e-4)
        assert answer["threshold"] == pytest.approx(threshold, abs=1e-5)
        assert answer["verdict"] == verdict and answer["truly_same"] == bool(ty[0] == ty[b])
        assert answer["people_a_b"] == [names[int(ty[0])], names[int(ty[b])]]
        said = next(v for v in answer["view"] if v["kind"] == "line")
        assert said["strong"] == verdict and said["bad"] == ((verdict == "same person") != bool(ty[0] == ty[b]))
    people = trained.test_ids.tolist()[::-1][:2]                        # two of the unseen people, by index
    answer = ask(lab, "triplet", {"run": "triplet", "people": ", ".join(names[p] for p in people)})
    assert answer["people"] == [names[p] for p in people]
    shown = torch.cat([torch.nonzero(ty == p).flatten()[:2] for p in people])   # two faces of each
    assert answer["table"]["indices"] == shown.tolist()
    assert answer["table"]["labels"] == [f"{names[p]}·{k}" for p in people for k in (1, 2)]
    assert torch.allclose(torch.tensor(answer["table"]["distances"]), d[shown][:, shown], atol=1e-4)
    mine = ty == people[0]
    other = ty == people[1]
    assert answer["mean_distances"][0][1] == pytest.approx(float(d[mine][:, other].mean()), abs=1e-4)
    assert answer["mean_distances"][1][1] == pytest.approx(
        float(d[other][:, other].sum() / (other.sum() * (other.sum() - 1))), abs=1e-4)   # pairs of two images
    tables = [v for v in answer["view"] if v["kind"] == "table"]
    assert len(tables) == 2 and len(tables[0]["rows"]) == 4
    default = ask(lab, "triplet", {"run": "triplet"})                    # the first three unseen people
    assert default["people"] == [names[p] for p in trained.test_ids.tolist()[:3]]
    again = ask(lab, "triplet", {"run": "triplet"})
    assert {k: v for k, v in default.items() if k != "run"} == {k: v for k, v in again.items() if k != "run"}


def test_triplet_refuses_a_person_who_is_not_there_beside_the_field(lab, runs):
    from paradigms.engine.trainer import load_trained

    trained = load_trained(runs / "triplet", "cpu")
    trained_on = trained.classes[int(trained.train_ids[0])]
    n = len(trained.parts["test"][1])
    for params, field, words in (
            ({"people": "zebra"}, "people", "no person 'zebra'"),
            ({"people": "42"}, "people", "no person '42'"),
            ({"people": trained_on}, "people", "not among the people kept from training"),
            ({"people": f"{trained.classes[int(trained.test_ids[0])]},{int(trained.test_ids[0])}"}, "people", "twice"),
            ({"a": str(n)}, "a", f"must be below {n}"), ({"b": "-1"}, "b", "between"), ({"a": "1.5"}, "a", "whole")):
        got, error = refused(lab, "triplet", {"run": "triplet", **params})
        assert got == field and words in error, (params, error)
    assert refused(lab, "triplet", {"run": "simclr"})[0] == "run"


# -- neighbours -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["simclr", "moco"])
def test_neighbours_are_the_cosine_ranking_of_the_encoders_features_and_the_views_the_recipes(lab, runs, drawing,
                                                                                            name):
    from paradigms import load
    from paradigms.data.images import read_image
    from paradigms.engine.trainer import load_trained
    from paradigms.evaluate.classifier import eval_images, fit_image

    run = runs / name
    net = load(run)                                                      # the frozen encoder f, in eval mode
    (x, y), _ = eval_images(run, 1000)
    with torch.no_grad():
        f = F.normalize(net(x), dim=1)                                   # (N, C) unit features
    answer = ask(lab, "neighbours", {"run": name, "test": "3", "k": "8", "seed": "5"})
    order = (f @ f[3]).argsort(descending=True)                          # brute force: every image's cosine
    order = order[order != 3][:8]                                        # the query itself left out
    assert [n["test"] for n in answer["neighbours"]] == order.tolist()
    assert [n["similarity"] for n in answer["neighbours"]] == pytest.approx((f[order] @ f[3]).tolist(), abs=1e-5)
    trained = load_trained(run, "cpu")                                   # the recipe: its classes, its views
    assert [n["label"] for n in answer["neighbours"]] == [trained.classes[int(y[i])] for i in order]
    torch.manual_seed(5)                                                 # the same seed: the same two views
    v1, v2 = trained.two_views(x[3:4])
    for key, v in (("view_1", v1), ("view_2", v2)):
        assert (pixels(answer[key], 8) == (v[0, 0].clamp(0, 1) * 255).round().byte().numpy()).all()
    assert answer["view_1"] != answer["view_2"]
    assert {k: v for k, v in answer.items() if k != "run"} == {
        k: v for k, v in ask(lab, "neighbours", {"run": name, "test": "3", "k": "8", "seed": "5"}).items()
        if k != "run"}                                                   # a fixed seed: the same answer
    assert ask(lab, "neighbours", {"run": name, "test": "3", "seed": "6"})["view_1"] != answer["view_1"]
    drawn = ask(lab, "neighbours", {"run": name, "k": "5"}, drawing.read_bytes())  # a drawing: all of the pool
    q = fit_image(read_image(drawing.read_bytes()), (1, 8, 8))[None]
    with torch.no_grad():
        order = (f @ F.normalize(net(q), dim=1)[0]).argsort(descending=True)[:5]
    assert [n["test"] for n in drawn["neighbours"]] == order.tolist() and drawn["source"] == "the image sent"


def test_neighbours_refuse_bad_settings_beside_the_field(lab):
    for params, field in (({"test": "0", "k": "0"}, "k"), ({"test": "0", "k": "65"}, "k"),
                          ({"test": "0", "seed": "-1"}, "seed"), ({"test": "99999"}, "test"), ({"test": "x"}, "test"),
                          ({}, "image")):
        assert refused(lab, "neighbours", {"run": "simclr", **params})[0] == field, params
    assert refused(lab, "neighbours", {"run": "triplet", "test": "0"})[0] == "run"
    assert refused(lab, "neighbours", {"run": "clip", "test": "0"})[0] == "run"      # an encoder, but CLIP's


# -- retrieval --------------------------------------------------------------------------------------------------------
def test_retrieval_ranks_the_evaluation_images_by_clips_image_text_similarity(lab, runs):
    from paradigms.engine.trainer import load_trained
    from paradigms.evaluate.classifier import eval_images

    run = runs / "clip"
    trained = load_trained(run, "cpu")
    (x, y), _ = eval_images(run, trained.cfg.retrieval_size)
    trained.model.eval()
    with torch.no_grad():
        images = F.normalize(trained.model.encode_image(x), dim=1)      # the image tower, W_i f(x)
    for caption in ("a photo of a three.", "a blurry photo of a seven."):
        answer = ask(lab, "retrieval", {"run": "clip", "query": caption, "k": "6"})
        t = F.normalize(trained.encode_text([caption]), dim=1)[0]        # the text tower
        sims = images @ t
        order = sims.argsort(descending=True)[:6]
        assert [d["test"] for d in answer["images"]] == order.tolist()
        assert [d["similarity"] for d in answer["images"]] == pytest.approx(sims[order].tolist(), abs=1e-5)
        assert [d["label"] for d in answer["images"]] == [trained.names[int(y[i])] for i in order]
        assert answer["unknown_words"] == [] and answer["of"] == len(y)
    some = ask(lab, "retrieval", {"run": "clip", "query": "a photo of the digit 3"})
    assert some["unknown_words"] == trained.unreadable([some["query"]])[some["query"]] == ["digit", "3"]   # said
    assert any(v["kind"] == "line" and v["class"] == "error" and "'digit', '3'" in v["text"] for v in some["view"])
    assert len(some["images"]) == 8                                                        # the default k


def test_retrieval_refuses_an_empty_or_unreadable_query_beside_the_field(lab):
    for params, field, words in (({"query": ""}, "query", "type a caption"), ({"query": "   "}, "query", "type"),
                                 ({"query": "zebra 3"}, "query", "cannot read any"),
                                 ({"query": "x" * 600}, "query", "at most 500"), ({"k": "0"}, "k", "between")):
        got, error = refused(lab, "retrieval", {"run": "clip", **params})
        assert got == field and words in error, (params, error)
    assert refused(lab, "retrieval", {"run": "simclr"})[0] == "run"


def test_each_runs_evaluation_features_are_computed_once_per_checkpoint(lab, runs, drawing):
    """An interaction is a lookup and one small network call: the evaluation set's features wait in FEATURES."""
    from paradigms.lab.panels.contrastive import FEATURES

    def again():
        raise AssertionError("computed twice")

    for panel, run, what, params, body in (
            ("triplet", "triplet", "triplet", {"a": "2", "b": "9"}, b""),
            ("neighbours", "moco", "neighbours", {"k": "8"}, drawing.read_bytes()),
            ("retrieval", "clip", "retrieval", {"query": "a photo of a five."}, b"")):
        first = ask(lab, panel, {"run": run, **params}, body)
        kept = FEATURES.get(runs / run, what, again)                     # there, for this checkpoint
        assert ask(lab, panel, {"run": run, **params}, body)["view"] == first["view"]
        assert FEATURES.get(runs / run, what, again) is kept


def test_each_panels_page_offers_the_runs_it_takes_and_its_controls(lab):
    for panel, runs, controls in (("triplet", {"triplet"}, ("a", "b", "people")),
                                  ("neighbours", {"simclr", "moco"}, ("k", "seed")),
                                  ("retrieval", {"clip"}, ("query", "k"))):
        page = lab.get(f"/panel/{panel}")
        assert page.status_code == 200, page.text
        offered = {r for r in ("triplet", "simclr", "moco", "clip") if f'value="{r}"' in page.text}
        assert offered == runs, (panel, offered)
        assert all(f'name="{c}"' in page.text for c in controls), panel
