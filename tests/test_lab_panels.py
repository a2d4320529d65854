"""The lab's panels over HTTP, against the command line on the same inputs: a classifier trained for a few seconds on
the embedded digits (and a second one for A/B), a drawing saved as a PNG file, and what each side says of it."""

from __future__ import annotations

import base64
import contextlib
import io
import json

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from paradigms.engine import Trainer  # noqa: E402
from paradigms.lab.server import create_app  # noqa: E402

from .test_answers import digit_png  # noqa: E402,F401 - a fixture: a test image of the digits as a PNG file
from .test_cli import error_line, run_cli  # noqa: E402
from .test_engine import config  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``a``: LeNet-5 after 5 epochs on the digits; ``b``: the same with another seed; ``ae``: an autoencoder, not a
    classifier."""
    root = tmp_path_factory.mktemp("runs")
    for name, seed in (("a", 0), ("b", 1)):
        Trainer(config("supervised", ["train.epochs=5", "train.figures=false"], seed=seed), root / name,
                progress=False).fit()
    Trainer(config("autoencoder", ["train.epochs=1", "train_size=300", "train.figures=false"]), root / "ae",
            progress=False).fit()
    return root


@contextlib.contextmanager
def lab_over(root):
    """An HTTP client of the lab over the runs folder ``root`` (its queue closed after)."""
    app = create_app(root)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client
    app.state.queue.close()


@pytest.fixture(scope="module")
def lab(runs):
    with lab_over(runs) as client:
        yield client


@pytest.fixture(scope="module")
def drawing(tmp_path_factory):
    """A seven drawn as a user would on the panel's black canvas (white strokes, 224 x 224), saved as a PNG file."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (224, 224))
    pen = ImageDraw.Draw(img)
    pen.line([(50, 50), (175, 50), (95, 190)], fill=255, width=25)
    path = tmp_path_factory.mktemp("drawing") / "seven.png"
    img.save(path)
    return path


def pixels(data_uri: str, size: int) -> np.ndarray:
    """A panel's PNG (enlarged by whole pixels) back at the network's ``size``."""
    from PIL import Image

    img = Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1])))
    a = np.asarray(img)
    step = a.shape[0] // size
    return a[::step, ::step]


def test_classify_a_drawing_gives_what_paradigms_eval_gives(lab, runs, drawing, capsys):
    r = lab.post("/api/panel/classify", params={"run": "a"}, content=drawing.read_bytes())
    assert r.status_code == 200, r.text
    panel = r.json()
    code, out, _ = run_cli(capsys, "eval", str(runs / "a"), "--image", str(drawing))
    assert code == 0
    cli = json.loads(out)[0]
    assert panel["prediction"] == cli["prediction"] == max(cli["probabilities"], key=cli["probabilities"].get)
    assert panel["probabilities"] == pytest.approx(cli["probabilities"], abs=1e-6)
    assert sum(panel["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert panel["run"]["id"] == "a" and panel["run"]["recipe"] == "supervised" and len(panel["run"]["sha256"]) == 64


def test_classify_a_test_image_and_the_mistakes_are_the_networks_own(lab, runs):
    import torch

    from paradigms.evaluate.classifier import class_probabilities, eval_images, load_classifier

    net = load_classifier(runs / "a")
    (x, y), _ = eval_images(runs / "a", 1000)
    probs = class_probabilities(net, x)
    for i in (0, 7):
        answer = lab.post("/api/panel/classify", params={"run": "a", "test": str(i)}).json()
        assert answer["prediction"] == net.classes[int(probs[i].argmax())]
        assert list(answer["probabilities"].values()) == pytest.approx(probs[i].tolist(), abs=1e-6)
        assert answer["source"] == f"test image {i} (a {net.classes[int(y[i])]})"
    m = lab.post("/api/panel/mistakes", params={"run": "a"}).json()
    wrong = (probs.argmax(1) != y)
    assert m["of"] == len(y) and m["wrong"] == int(wrong.sum()) > 0
    shown = [d["test"] for d in m["mistakes"]]
    assert all(bool(wrong[i]) for i in shown)
    confidences = [d["confidence"] for d in m["mistakes"]]
    assert confidences == sorted(confidences, reverse=True)
    assert confidences[0] == pytest.approx(float(probs[wrong].max(1).values.max()), abs=1e-6)
    assert torch.is_tensor(x)


def test_the_attack_panel_gives_paradigms_attacks_picture_within_epsilon(lab, runs, drawing, capsys):
    from PIL import Image

    eps = 0.2
    r = lab.post("/api/panel/attack", params={"run": "a", "eps": str(eps), "method": "pgd", "steps": "10",
                                               "seed": "3"}, content=drawing.read_bytes())
    assert r.status_code == 200, r.text
    panel = r.json()
    assert panel["linf"] <= eps + 1e-6
    code, out, _ = run_cli(capsys, "attack", str(runs / "a"), "--image", str(drawing), "--eps", str(eps),
                           "--method", "pgd", "--steps", "10", "--seed", "3")
    assert code == 0, out
    cli = np.asarray(Image.open(drawing.with_name("seven-adversarial.png")))
    assert np.array_equal(pixels(panel["adversarial"], 8), cli)
    assert f"before: {panel['before'][0]['class']} " in out and f"after (eps {eps:g}): {panel['after'][0]['class']} " in out
    original = pixels(panel["original"], 8).astype(int)
    assert np.abs(pixels(panel["adversarial"], 8).astype(int) - original).max() <= round(eps * 255) + 1


def test_epsilon_zero_changes_nothing_and_a_larger_one_changes_more(lab):
    answers = [lab.post("/api/panel/attack", params={"run": "a", "test": "0", "eps": e, "method": "fgsm"}).json()
               for e in ("0", "0.05", "0.3")]
    assert answers[0]["linf"] == 0 and answers[0]["before"] == answers[0]["after"]
    assert answers[0]["original"] == answers[0]["adversarial"]
    assert 0 < answers[1]["linf"] <= 0.05 + 1e-6 < answers[2]["linf"] <= 0.3 + 1e-6
    # the true class's probability falls as epsilon grows (an untargeted attack pushes it down)
    top = answers[0]["before"][0]["class"]
    p = [next((c["p"] for c in a["after"] if c["class"] == top), 0.0) for a in answers]
    assert p[0] > p[2]


def test_a_targeted_attack_and_two_runs_on_the_same_picture(lab):
    q = {"test": "0", "eps": "0.5", "method": "pgd", "steps": "40", "target": "3"}
    a = lab.post("/api/panel/attack", params={**q, "run": "a"}).json()
    b = lab.post("/api/panel/attack", params={**q, "run": "b"}).json()
    assert a["target"] == b["target"] == "3" and a["original"] == b["original"]
    assert a["after"][0]["class"] == "3"          # at eps 0.5, PGD-40 reaches its target on the digits
    assert a["run"]["sha256"] != b["run"]["sha256"]


def test_bad_panel_input_is_a_message_beside_its_control(lab, drawing):
    cases = [({"run": "a", "test": "0", "eps": "2"}, b"", "eps", "between 0 and 1"),
             ({"run": "a", "test": "0", "eps": "nan"}, b"", "eps", "between"),
             ({"run": "a", "test": "0", "eps": "abc"}, b"", "eps", "must be a number"),
             ({"run": "a", "test": "0", "target": "cat"}, b"", "target", "no such class"),
             ({"run": "a", "test": "0", "method": "cw"}, b"", "method", "one of pgd, fgsm"),
             ({"run": "a", "test": "-1"}, b"", "test", "between 0"),
             ({"run": "a", "test": "99999"}, b"", "test", "must be below"),
             ({"run": "a"}, b"", "image", "no image"),
             ({"run": "a"}, drawing.read_bytes()[:200], "image", "damaged or cut short"),
             ({"run": "a"}, b"plain text", "image", "not an image"),
             ({"run": "ae", "test": "0"}, b"", "run", "is a classifier")]
    for query, body, field, words in cases:
        r = lab.post("/api/panel/attack", params=query, content=body)
        assert r.status_code == 400 and r.json()["field"] == field and words in r.json()["error"], (query, r.text)
        assert "Traceback" not in r.text
    assert lab.post("/api/panel/nope", params={"run": "a"}).status_code == 404
    assert lab.post("/api/panel/classify", params={"run": "a"}, content=drawing.read_bytes()).status_code == 200


def test_a_panel_page_reopens_with_the_state_of_its_address_and_offers_only_runs_that_fit(lab):
    page = lab.get("/panel/attack", params={"run": "b", "b": "a", "test": "4", "eps": "0.25", "method": "fgsm",
                                            "target": "3"}).text
    assert 'value="b" selected' in page and 'name="eps" min="0" max="0.5" step="0.005" value="0.25"' in page
    assert "<option selected>fgsm</option>" in page and 'name="target" value="3"' in page
    assert 'value="4"' in page and 'value="ae"' not in page
    run_page = lab.get("/run", params={"run": "a"}).text
    assert '/panel/classify?run=a' in run_page and '/panel/attack?run=a' in run_page
    ae_page = lab.get("/run", params={"run": "ae"}).text      # an autoencoder's page offers its panel, no classifier's
    assert "/panel/autoencoder?run=ae" in ae_page and "/panel/classify" not in ae_page


def test_eval_image_on_a_run_that_is_not_a_classifier_is_one_line(runs, drawing, capsys):
    assert "is not a classifier" in error_line(capsys, "eval", str(runs / "ae"), "--image", str(drawing))
    assert "no such file" in error_line(capsys, "eval", str(runs / "a"), "--image", str(drawing) + ".missing")


# -- text: GPT writes, BERT fills ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def text_runs(runs):
    """A tiny GPT and a tiny BERT on the standard library's text (20 steps each), beside the image runs."""
    from paradigms.api import run

    from .test_language import SETS

    run("gpt", "stdlib", preset="none", sets=SETS + ["sample_tokens=0"], out=runs / "gpt")
    run("bert", "stdlib", preset="none", sets=SETS + ["tokenizer.vocab_size=500"], out=runs / "bert")
    return runs


def events(lab, params, panel: str = "gpt", method: str = "GET", body: bytes = b"") -> list[tuple[str, object]]:
    """The server-sent events of a panel's stream, as (kind, data) pairs."""
    with lab.stream(method, f"/api/stream/{panel}", params=params, content=body) as r:
        assert r.status_code == 200, r.read()
        text = "".join(r.iter_text())
    out = []
    for block in text.strip().split("\n\n"):
        kind, data = block.split("\n", 1)
        out.append((kind.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


def test_gpt_at_top_k_one_writes_what_paradigms_sample_writes_and_streams_it(lab, text_runs, capsys):
    q = {"run": "gpt", "prompt": "def ", "tokens": "40", "top_k": "1", "seed": "5"}
    answer = lab.post("/api/panel/gpt", params=q).json()
    again = lab.post("/api/panel/gpt", params={**q, "seed": "6", "temperature": "1.7"}).json()
    assert answer["text"] == again["text"] and len(answer["text"]) >= 40             # greedy: the same every time
    code, out, _ = run_cli(capsys, "sample", str(text_runs / "gpt"), "--prompt", "def ", "--tokens", "40",
                           "--top-k", "1", "--seed", "5")
    assert code == 0 and out == "def " + answer["text"] + "\n"
    streamed = events(lab, q)
    assert streamed[-1][0] == "end" and all(kind == "piece" for kind, _ in streamed[:-1])
    assert "".join(piece for _, piece in streamed[:-1]) == answer["text"] and len(streamed) > 10
    table = answer["next"]
    assert answer["text"].startswith(table[0]["token"])                            # greedy takes the likeliest
    ps = [row["p"] for row in table]
    assert ps == sorted(ps, reverse=True) and 0 < sum(ps) <= 1 + 1e-6 and len(ps) == 10


def test_next_tokens_is_the_softmax_of_the_last_position(text_runs):
    import torch

    from paradigms.engine.trainer import load_trained

    gpt = load_trained(text_runs / "gpt", "cpu")
    vocab = gpt.net.cfg.vocab_size
    every = gpt.next_tokens("def ", top=vocab, temperature=0.5)
    assert sum(p for _, p in every) == pytest.approx(1, abs=1e-5) and len(every) == vocab
    with torch.no_grad():
        logits = gpt.net(gpt.encode_prompt("def "))[0, -1].float()
    expected = (logits / 0.5).softmax(-1).topk(3)
    assert [p for _, p in every[:3]] == pytest.approx(expected.values.tolist(), abs=1e-6)
    assert [t for t, _ in every[:3]] == [gpt.tokenizer.decode([int(i)]) for i in expected.indices]


def test_ten_gpt_streams_at_once_all_complete(lab, text_runs):
    import threading

    results = {}

    def one(i):
        results[i] = events(lab, {"run": "gpt", "prompt": "def ", "tokens": "30", "seed": str(i)})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(results) == list(range(10)) and all(r[-1][0] == "end" for r in results.values())


def test_bert_fills_what_paradigms_fill_gives(lab, text_runs, capsys):
    answer = lab.post("/api/panel/bert", params={"run": "bert", "text": "def [MASK](self):", "top": "3"}).json()
    code, out, _ = run_cli(capsys, "fill", str(text_runs / "bert"), "def [MASK](self):", "--top", "3")
    assert code == 0
    printed = out.strip().split("  ")
    printed[0] = printed[0].removeprefix("[MASK] 1: ")
    cli = [(eval(t), float(p)) for t, p in (x.rsplit(" ", 1) for x in printed)]  # noqa: S307 - repr of a token
    assert [(f["token"], round(f["p"], 3)) for f in answer["fills"][0]] == cli
    r = lab.post("/api/panel/bert", params={"run": "bert", "text": "no blank here"})
    assert r.status_code == 400 and r.json()["field"] == "text" and "no [MASK]" in r.json()["error"]
    assert lab.post("/api/panel/bert", params={"run": "gpt"}).json()["field"] == "run"    # a gpt is no bert


def test_bad_gpt_settings_are_said_beside_their_control(lab, text_runs):
    cases = [({"temperature": "0"}, "temperature", "between"), ({"top_k": "-3"}, "top_k", "between"),
             ({"tokens": "5000"}, "tokens", "between"), ({"prompt": "x" * 17}, "prompt", "block size 16"),
             ({"prompt": "def \u2603"}, "prompt", "not in the vocabulary"), ({"prompt": "y" * 3000}, "prompt",
                                                                              "at most 2,000")]
    for extra, field, words in cases:
        for how in ("answer", "stream"):
            params = {"run": "gpt", "tokens": "5", **extra}
            r = (lab.post("/api/panel/gpt", params=params) if how == "answer"
                 else lab.get("/api/stream/gpt", params=params))
            assert r.status_code == 400 and r.json()["field"] == field and words in r.json()["error"], (extra, how,
                                                                                                        r.text)


# -- CLIP: label names typed, a picture classified by them ---------------------------------------------------------------
@pytest.fixture(scope="module")
def clip_runs(runs):
    Trainer(config("clip", ["train.epochs=1", "train_size=300", "train.figures=false"]), runs / "clip",
            progress=False).fit()
    return runs


LABELS = "zero,one,two,three,four,five,six,seven,eight,nine"


def test_clip_zero_shot_gives_what_paradigms_zero_shot_gives(lab, clip_runs, digit_png, capsys):
    answer = lab.post("/api/panel/clip", params={"run": "clip", "labels": LABELS}, content=digit_png.read_bytes())
    assert answer.status_code == 200, answer.text
    answer = answer.json()
    code, out, _ = run_cli(capsys, "zero-shot", str(clip_runs / "clip"), str(digit_png), "--labels", LABELS,
                           "--top", "10")
    assert code == 0
    printed = out.strip().split(": ", 1)[1].split("  ")
    cli = [(name, float(p)) for name, p in (x.rsplit(" ", 1) for x in printed)]
    mine = sorted(answer["probabilities"].items(), key=lambda kv: -kv[1])
    assert [(k, round(v, 3)) for k, v in mine] == cli
    assert answer["prediction"] == cli[0][0] and sum(answer["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert answer["unreadable"] == {}


def test_clip_panel_refuses_bad_labels_beside_the_field(lab, clip_runs, digit_png):
    for labels, words in (("", "is empty"), ("cat", "gives one label"), ("one,one", "twice"),
                          ("zebra,giraffe", "cannot read any of them")):
        r = lab.post("/api/panel/clip", params={"run": "clip", "labels": labels}, content=digit_png.read_bytes())
        assert r.status_code == 400 and r.json()["field"] == "labels" and words in r.json()["error"], (labels, r.text)
    some = lab.post("/api/panel/clip", params={"run": "clip", "labels": "seven,zebra"},
                    content=digit_png.read_bytes()).json()
    assert list(some["unreadable"]) == ["zebra"]                                  # said, not hidden
    assert lab.post("/api/panel/clip", params={"run": "a", "labels": LABELS}).json()["field"] == "run"


# -- GAN: samples for a seed, a walk between two codes ----------------------------------------------------------------
@pytest.fixture(scope="module")
def gan_runs(runs):
    Trainer(config("gan", ["train.epochs=1", "train.figures=false"]), runs / "gan", progress=False).fit()
    return runs


def test_gan_samples_are_paradigms_samples_picture_and_the_walk_joins_two_seeds(lab, gan_runs, tmp_path, capsys):
    import torch
    from PIL import Image

    from paradigms.engine.trainer import load_trained

    answer = lab.post("/api/panel/gan", params={"run": "gan", "n": "16", "seed": "3", "seed_b": "9",
                                                 "steps": "6"}).json()
    code, _, _ = run_cli(capsys, "sample", str(gan_runs / "gan"), "--n", "16", "--seed", "3",
                         "--out", str(tmp_path / "s.png"))
    assert code == 0
    panel = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["grid"].split(",", 1)[1]))))
    assert np.array_equal(panel, np.asarray(Image.open(tmp_path / "s.png")))
    gan = load_trained(gan_runs / "gan", "cpu")
    walk = gan.interpolate(3, 9, 6)
    ends = [gan.sample(1, torch.randn(1, gan.cfg.latent, generator=torch.Generator().manual_seed(s))) for s in (3, 9)]
    assert walk.shape[0] == 6 and torch.allclose(walk[0], ends[0][0]) and torch.allclose(walk[-1], ends[1][0])
    steps = (walk[1:] - walk[:-1]).abs().mean((1, 2, 3))
    assert (steps > 0).all()                                             # it moves at every step
    r = lab.post("/api/panel/gan", params={"run": "gan", "n": "0"})
    assert r.status_code == 400 and r.json()["field"] == "n"
    assert lab.post("/api/panel/gan", params={"run": "a"}).json()["field"] == "run"
