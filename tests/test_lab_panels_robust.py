"""The robustness panels over HTTP, against the command line on the same inputs: augmentation's grid against
``paradigms augment``, a universal patch against ``adversarial.patch.paste`` and the network, a certificate against
the row ``paradigms certify`` writes. One classifier trained for seconds on the embedded digits, under noise."""

from __future__ import annotations

import base64
import io
import shutil

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")


from paradigms.engine import Trainer  # noqa: E402

from .test_cli import run_cli  # noqa: E402
from .test_engine import config  # noqa: E402
from .test_lab_panels import events as stream_events  # noqa: E402
from .test_lab_panels import lab_over  # noqa: E402

SIGMA = 0.5
"""The noise the run trains under (the certify panel's default sigma)."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``a``: LeNet-5 after 2 epochs on the digits under Gaussian noise of sigma 0.5, with a universal patch to '3'
    (20 steps, by the command line); ``bare``: the same network without the patch."""
    root = tmp_path_factory.mktemp("runs")
    Trainer(config("supervised", ["train.epochs=2", "train.figures=false",
                                  f"augment=[{{gaussian_noise: {{sigma: {SIGMA}}}}}]"]), root / "a", progress=False).fit()
    shutil.copytree(root / "a", root / "bare")
    return root


class Captured:
    """What ``run_cli`` reads its output from, outside a test (a module's fixture has no capsys)."""

    def __init__(self):
        self.out, self.err = io.StringIO(), io.StringIO()

    def readouterr(self) -> tuple[str, str]:
        return self.out.getvalue(), self.err.getvalue()


@pytest.fixture(scope="module")
def patched(runs):
    """Run ``a`` with the patch `paradigms attack --method patch` trains (its PNG beside the result)."""
    from contextlib import redirect_stderr, redirect_stdout

    captured = Captured()
    with redirect_stdout(captured.out), redirect_stderr(captured.err):
        code, _, err = run_cli(captured, "attack", str(runs / "a"), "--method", "patch", "--target", "3",
                               "--patch-steps", "20", "--n", "50")
    assert code == 0, err
    return runs


@pytest.fixture(scope="module")
def lab(runs):
    with lab_over(runs) as client:
        yield client


@pytest.fixture(scope="module")
def drawing():
    """A seven drawn as on the panel's black canvas (white strokes, 224 x 224), as PNG bytes."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (224, 224))
    ImageDraw.Draw(img).line([(50, 50), (175, 50), (95, 190)], fill=255, width=25)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def decoded(data_uri: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1]))))


def shrunk(data_uri: str, size: int) -> np.ndarray:
    """A panel's picture (enlarged by whole pixels) back at the network's ``size``."""
    a = decoded(data_uri)
    step = a.shape[0] // size
    return a[::step, ::step]


def as_bytes(image) -> np.ndarray:
    """A (1, H, W) image in [0, 1] as the 8-bit pixels a PNG of it holds."""
    return (image.clamp(0, 1) * 255).round().byte()[0].numpy()


def ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def refused(response, field: str, *words: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field and all(w in response.json()["error"] for w in words), response.text
    assert "Traceback" not in response.text


# -- augment ------------------------------------------------------------------------------------------------------------
def test_the_augment_panel_draws_the_versions_paradigms_augment_draws(lab, runs, capsys, tmp_path, monkeypatch):
    import torch
    from PIL import Image

    from paradigms.augment import figures as F
    from paradigms.engine.report import image_grid, upscale
    from paradigms.lab.panels.base import evaluation_image

    x, _, _ = evaluation_image(runs / "a", {"test": "5"})                   # (1, 1, 8, 8)
    Image.fromarray(as_bytes(x[0])).save(tmp_path / "five.png")
    for policy, strength in (("rotate, blur, cutout: {size: 3}", "0.6"), ("", None)):
        drawn = []
        with monkeypatch.context() as m:                                      # what the command draws, caught
            original = F.grid_images
            m.setattr(F, "grid_images", lambda *a, **k: drawn.append(original(*a, **k)) or drawn[-1])
            args = ["augment", str(tmp_path / "five.png"), "--n", "18", "--seed", "4", "--out", str(tmp_path / "g.png")]
            args += ["--policy", policy, "--strength", strength] if policy else []
            code, _, err = run_cli(capsys, *args)
        assert code == 0, err
        (cli, labels), = drawn
        q = {"run": "a", "test": "5", "transforms": policy, "n": "18", "seed": "4", "strength": strength or "0.5"}
        answer = ok(lab.post("/api/panel/augment", params=q))
        assert answer["labels"] == labels and len(labels) == 18
        assert np.array_equal(decoded(answer["grid"]).reshape(image_grid(upscale(torch.cat([x, cli])), 7).shape),
                              image_grid(upscale(torch.cat([x, cli])), 7))
        assert answer["view"][1]["items"][0]["src"] == answer["grid"]
        assert ok(lab.post("/api/panel/augment", params=q))["grid"] == answer["grid"]       # the same seed, again
        assert ok(lab.post("/api/panel/augment", params={**q, "seed": "5"}))["grid"] != answer["grid"]
        if policy:
            assert answer["policy"] == ("rotate(p=1.0, degrees=54.0) -> blur(p=1.0, low=0.6, high=1.8) -> "
                                        "cutout(p=1.0, size=3, inside=False, fill=mean)")
            assert all(t.startswith("rotate") and "blur" in t and "cutout" in t for t in labels)


def test_strength_sets_the_transforms_named_bare(lab):
    q = {"run": "a", "test": "0", "transforms": "rotate", "n": "30", "seed": "1"}
    weak, strong = (ok(lab.post("/api/panel/augment", params={**q, "strength": s})) for s in ("0.1", "1"))
    angles = [[abs(float(t.split()[1].rstrip("°"))) for t in a["labels"]] for a in (weak, strong)]
    assert max(angles[0]) <= 9 + 0.5 and max(angles[1]) > 20          # 90 s degrees at most
    assert weak["policy"] == "rotate(p=1.0, degrees=9.0)"
    kept = ok(lab.post("/api/panel/augment", params={**q, "transforms": "rotate: {degrees: 2}", "strength": "1"}))
    assert kept["policy"] == "rotate(p=1.0, degrees=2.0)"               # settings written out are kept


def test_a_drawing_is_augmented_at_the_networks_input_shape(lab, drawing):
    answer = ok(lab.post("/api/panel/augment", params={"run": "a", "n": "6"}, content=drawing))
    grid = decoded(answer["grid"])
    assert len(answer["labels"]) == 6 and answer["source"] == "the image sent"
    assert grid.shape[1] == 1 + 7 * (64 + 1) and grid.shape[0] == 1 + 1 * (64 + 1)   # 8x8 pictures shown at 64 px


def test_bad_augment_settings_are_said_beside_their_control(lab):
    cases = [({"transforms": "rotat"}, "transforms", "did you mean 'rotate'"),
             ({"transforms": "hue"}, "transforms", "needs colour"),
             ({"transforms": "[rotate"}, "transforms", "not valid YAML"),
             ({"transforms": "cutout: {size: 0}"}, "transforms", "cutout.size"),
             ({"strength": "2"}, "strength", "between 0 and 1"),
             ({"n": "0"}, "n", "between 1 and 100"),
             ({"seed": "-1"}, "seed", "between")]
    for extra, field, words in cases:
        refused(lab.post("/api/panel/augment", params={"run": "a", "test": "0", **extra}), field, words)
    refused(lab.post("/api/panel/augment", params={"run": "a"}), "image", "no image")


# -- patch --------------------------------------------------------------------------------------------------------------
def test_the_patch_panel_pastes_the_runs_patch_where_pointed(lab, patched):
    import torch

    from paradigms.adversarial.patch import paste, place
    from paradigms.adversarial.runs import load_patch, patches
    from paradigms.evaluate.classifier import class_probabilities, load_classifier
    from paradigms.lab.panels.base import evaluation_image

    run = patched / "a"
    kept, = patches(run)
    assert kept["name"] == "001-attack-patch-to-3" and kept["target"] == "3" and kept["path"].is_file()
    net = load_classifier(run)
    x, _, _ = evaluation_image(run, {"test": "2"})
    sticker = load_patch(kept["path"], 1)
    k = sticker.shape[-1]
    for q in ({"px": "0.2", "py": "0.8"}, {"px": "0.9", "py": "0.1", "angle": "30", "scale": "1.2"}, {}):
        answer = ok(lab.post("/api/panel/patch", params={"run": "a", "test": "2", **q}))
        where = place(float(q.get("px", 0.5)), float(q.get("py", 0.5)), k, 8, 8, float(q.get("angle", 0)),
                      float(q.get("scale", 1)))
        pasted = paste(x, sticker, where)
        assert np.array_equal(shrunk(answer["patched"], 8), as_bytes(pasted[0]))
        p = class_probabilities(net, torch.cat([x, pasted]))
        assert answer["prediction_before"] == net.classes[int(p[0].argmax())]
        assert answer["prediction_after"] == net.classes[int(p[1].argmax())]
        assert list(answer["after"].values()) == pytest.approx(p[1].tolist(), abs=1e-6)
        assert answer["patch"] == "001-attack-patch-to-3" and answer["target"] == "3"
        assert [answer["top"], answer["left"]] == [int(where["top"][0]), int(where["left"][0])]
    picked = [i for b in answer["view"] if b["kind"] == "figures" for i in b["items"] if "pick" in i]
    assert picked == [{"src": answer["patched"], "caption": picked[0]["caption"], "pick": ["px", "py"]}]
    assert ok(lab.post("/api/panel/patch", params={"run": "a", "test": "2", "patch": "1"}))["patched"] == \
        answer["patched"]


def test_bad_patch_settings_and_a_run_without_a_patch(lab, patched):
    refused(lab.post("/api/panel/patch", params={"run": "bare", "test": "0"}), "patch",
            "no patch yet", "paradigms attack", "--method patch --target")
    refused(lab.post("/api/panel/patch", params={"run": "a", "test": "0", "patch": "7"}), "patch",
            "1 (001-attack-patch-to-3)")
    for extra, field in (({"px": "1.5"}, "px"), ({"py": "-0.1"}, "py"), ({"scale": "3"}, "scale"),
                         ({"angle": "abc"}, "angle")):
        refused(lab.post("/api/panel/patch", params={"run": "a", "test": "0", **extra}), field, field)


# -- certify ------------------------------------------------------------------------------------------------------------
def certify_table(runs, capsys) -> dict[int, dict]:
    from paradigms.adversarial.certify import read_rows

    code, _, err = run_cli(capsys, "certify", str(runs / "a"), "--sigma", "0.25", "--n", "500", "--n0", "50",
                           "--skip", "1", "--max", "3")
    assert code == 0, err
    return {r["idx"]: r for r in read_rows(runs / "a" / "certify" / "sigma0.25_n500_n050_alpha0.001_seed0.tsv")}


def events(lab, params, body=b"") -> list[dict]:
    """The certify stream's pieces (its progress, then its answer), checked to end with its ``end`` event."""
    out = stream_events(lab, params, "certify", "POST", body)
    assert out[-1][0] == "end" and all(kind == "piece" for kind, _ in out[:-1])
    return [piece for _, piece in out[:-1]]


def test_the_certify_panel_gives_the_row_paradigms_certify_writes(lab, runs, capsys):
    rows = certify_table(runs, capsys)
    assert sorted(rows) == [0, 1, 2]
    q = {"run": "a", "sigma": "0.25", "n": "500", "n0": "50"}
    for i in (0, 1, 2):
        answer = ok(lab.post("/api/panel/certify", params={**q, "test": str(i)}))
        row = rows[i]
        assert answer["predict"] == row["predict"] and answer["radius"] == pytest.approx(row["radius"], abs=5e-5)
        assert answer["prediction"] == ("abstain" if row["predict"] == -1 else str(row["predict"]))  # digits' names
        assert answer["label"] == str(row["label"]) and answer["correct"] == bool(row["correct"])
        assert answer["index"] == i and answer["sigma"] == 0.25 and answer["trained_sigma"] == SIGMA
    assert any(rows[i]["predict"] != -1 and rows[i]["radius"] > 0 for i in rows)      # something was certified
    verdict = next(b for b in answer["view"] if b["kind"] == "line")
    assert verdict["strong"] == ("abstains" if answer["predict"] == -1 else
                                 f"certified within an L2 radius of {answer['radius']:.3f}")


def test_the_certify_stream_shows_progress_then_the_same_answer(lab, runs):
    q = {"run": "a", "test": "1", "sigma": "0.25", "n": "500", "n0": "50", "batch": "100"}
    pieces = events(lab, q)
    progress, answer = pieces[:-1], pieces[-1]
    done = [p["done"] for p in progress]
    assert done[0] == 0 and done[-1] == 550 and done == sorted(done) and len(set(done)) >= 5
    assert all(p["of"] == 550 and p["unit"] == "noisy samples" for p in progress)
    plain = ok(lab.post("/api/panel/certify", params=q))
    assert {k: v for k, v in answer.items() if k != "run"} == {k: v for k, v in plain.items() if k != "run"}
    assert answer["run"]["id"] == "a"


def test_certify_defaults_to_the_runs_training_sigma_and_a_drawing_gets_its_own_certificate(lab, runs, drawing):
    import torch

    from paradigms.adversarial.certify import image_seed
    from paradigms.adversarial.smoothing import Smooth
    from paradigms.data.images import read_image
    from paradigms.evaluate.classifier import fit_image, load_classifier

    answer = ok(lab.post("/api/panel/certify", params={"run": "a", "test": "0", "n": "200", "n0": "20"}))
    assert answer["sigma"] == answer["trained_sigma"] == SIGMA
    drawn = ok(lab.post("/api/panel/certify", params={"run": "a", "n": "300", "n0": "30", "seed": "2"},
                        content=drawing))
    net = load_classifier(runs / "a")
    x = fit_image(read_image(drawing), net.input_shape)[None]
    torch.manual_seed(image_seed(2, 0))                   # a picture sent is seeded as index 0
    (predict, radius), = Smooth(net, 10, SIGMA).certify_many(x, 30, 300, 0.001, 1000)
    assert drawn["predict"] == predict and drawn["radius"] == pytest.approx(radius, abs=1e-9)
    assert drawn["index"] is None and drawn["label"] is None and drawn["source"] == "the image sent"
    assert np.array_equal(shrunk(drawn["input"], 8), as_bytes(x[0]))
    assert [i["src"] for i in drawn["view"][0]["items"]] == [drawn["input"], drawn["noisy"]]


def test_bad_certify_settings_are_said_beside_their_control_before_any_work(lab):
    cases = [({"sigma": "0"}, "sigma", "above 0"), ({"sigma": "-1"}, "sigma", "between"),
             ({"sigma": "9"}, "sigma", "between 0 and 4"), ({"sigma": "abc"}, "sigma", "must be a number"),
             ({"n": "200000"}, "n", "between"), ({"n0": "500", "n": "400"}, "n0", "smaller than n=400"),
             ({"alpha": "0"}, "alpha", "above 0"), ({"alpha": "0.9"}, "alpha", "between"),
             ({"batch": "0"}, "batch", "between"), ({"test": "99999"}, "test", "must be below")]
    for extra, field, words in cases:
        params = {"run": "a", "test": "0", **extra}
        refused(lab.post("/api/panel/certify", params=params), field, words)
        refused(lab.post("/api/stream/certify", params=params), field, words)


def test_closing_the_certify_stream_stops_its_work(runs, monkeypatch):
    from paradigms.adversarial import smoothing
    from paradigms.lab.panels.robust import certify_stream

    batches = []
    original = smoothing.Smooth.counting

    def counting(self, *a, **k):                   # each forward batch of noisy copies, counted as it is made
        steps = original(self, *a, **k)
        while True:
            try:
                done = next(steps)
            except StopIteration as stop:
                return stop.value
            batches.append(done)
            yield done

    monkeypatch.setattr(smoothing.Smooth, "counting", counting)
    pieces = certify_stream(runs / "a", {"test": "0", "n": "100000", "n0": "100", "batch": "500"}, b"")
    assert next(pieces) == {"done": 0, "of": 100_100, "unit": "noisy samples"}
    assert next(pieces)["done"] > 0
    pieces.close()
    asked = len(batches)
    assert 0 < asked < 100_100 / 500 / 2                        # closed long before the end
    with pytest.raises(StopIteration):
        next(pieces)
    assert len(batches) == asked


def test_the_panels_pages_show_their_controls_and_the_run_page_links_them(lab):
    page = lab.get("/panel/certify", params={"run": "a", "n": "500"}).text
    assert 'name="sigma"' in page and 'name="n" min="2" max="100000" value="500"' in page and ">certify</button>" in page
    page = lab.get("/panel/patch", params={"run": "a", "px": "0.3"}).text
    assert 'type="range" name="px" min="0" max="1" step="0.01" value="0.3"' in page
    page = lab.get("/panel/augment", params={"run": "a"}).text
    assert 'name="transforms"' in page and 'name="strength"' in page
    run_page = lab.get("/run", params={"run": "a"}).text
    assert all(f"/panel/{name}?run=a" in run_page for name in ("augment", "patch", "certify"))
