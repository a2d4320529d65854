"""The autoencoder, VAE and MAE panels over HTTP, against the library and the command line on the same inputs: an
autoencoder trained on the zeros alone, a VAE with a 20-D code and one with a 2-D code, a tiny masked autoencoder
(each trained for about a second on the embedded digits), a drawn seven and the runs' test images."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")


from paradigms.engine import Trainer  # noqa: E402

from .test_cli import run_cli  # noqa: E402
from .test_engine import config  # noqa: E402
from .test_lab_panels import drawing, lab_over, pixels  # noqa: E402,F401 - a fixture: a seven drawn on the panel's canvas
from .test_mae import TINY  # noqa: E402

VAE = ["train.epochs=2", "train_size=300", "iwae_k=10", "iwae_n=50", "train.figures=false"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``zero``: an autoencoder that learnt the zeros alone (the normal class); ``vae``: a VAE, 20-D code; ``vae2``: a
    VAE with a 2-D code; ``mae``: a masked autoencoder (ViT, 2 x 2 patches of the 8 x 8 digits)."""
    root = tmp_path_factory.mktemp("runs")
    for name, recipe, sets in (
            ("zero", "autoencoder", ["classes=[0]", "train.epochs=10", "probe_n=0", "train.figures=false"]),
            ("vae", "vae", VAE), ("vae2", "vae", [*VAE, "code=2"]),
            ("mae", "mae", [*TINY, "train.epochs=1", "train.figures=false"])):
        Trainer(config(recipe, sets), root / name, progress=False).fit()
    return root


@pytest.fixture(scope="module")
def lab(runs):
    with lab_over(runs) as client:
        yield client


def loaded(run):
    from paradigms.engine.trainer import load_trained

    return load_trained(run, "cpu")


def drawn(path, shape):
    """The drawing as every panel reads a picture sent (``paradigms eval --image``'s fit): (1, C, H, W) in [0, 1]."""
    from paradigms.data.images import read_image
    from paradigms.evaluate.classifier import fit_image

    return fit_image(read_image(path.read_bytes()), tuple(shape))[None]


def png_array(data_uri: str) -> np.ndarray:
    """A panel's PNG data URI as its pixels, unchanged."""
    import base64
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1]))))


def as_bytes(image):
    """A (C, H, W) image in [0, 1] as the uint8 pixels its PNG carries, (H, W) for grey."""
    return (image.clamp(0, 1) * 255).round().byte().numpy()[0]


def test_each_panel_offers_exactly_the_runs_of_its_recipes(lab, runs):
    from paradigms.lab.panels import PANELS, fits

    takes = {"autoencoder": {"zero", "vae", "vae2"}, "vae": {"vae", "vae2"}, "mae": {"mae"}, "gan": set()}
    for name, expected in takes.items():
        assert {r for r in ("zero", "vae", "vae2", "mae") if fits(PANELS[name], runs / r)} == expected, name
    for name, run in (("vae", "zero"), ("mae", "vae"), ("autoencoder", "mae")):
        r = lab.post(f"/api/panel/{name}", params={"run": run, "test": "0"})
        assert r.status_code == 400 and r.json()["field"] == "run" and f"the {name} panel" in r.json()["error"]
    page = lab.get("/panel/vae", params={"run": "vae2"}).text
    assert 'value="vae2" selected' in page and 'value="zero"' not in page and 'name="z4"' in page


@pytest.mark.parametrize("run", ["zero", "vae"])
def test_the_autoencoder_panel_scores_as_paradigms_anomaly_against_the_librarys_threshold(lab, runs, drawing, run):
    import torch

    from paradigms.autoencoder.anomaly import anomaly_run, anomaly_threshold, normal_scores
    from paradigms.data import load_images, unit
    from paradigms.evaluate.classifier import eval_images

    trained = loaded(runs / run)
    threshold = anomaly_threshold(trained)
    normal = normal_scores(trained)
    (test_x, _), _ = eval_images(runs / run, 1)
    for query, body, x in (({"test": "0"}, b"", test_x), ({}, drawing.read_bytes(), drawn(drawing, trained.in_shape))):
        r = lab.post("/api/panel/autoencoder", params={"run": run, **query}, content=body)
        assert r.status_code == 200, r.text
        a = r.json()
        score = float(trained.anomaly_score(x)[0])
        assert a["score"] == pytest.approx(score, rel=1e-5)
        assert a["threshold"] == pytest.approx(threshold, rel=1e-9) and a["quantile"] == 0.95
        assert a["verdict"] == ("anomalous" if score > threshold else "normal")
        assert a["share_below"] == pytest.approx(float((normal < a["score"]).double().mean()))
        assert a["normal_n"] == len(trained.train_x)
        assert np.array_equal(pixels(a["reconstruction"], 8), as_bytes(trained.reconstruct(x)[0].detach()))
        assert np.array_equal(pixels(a["input"], 8), as_bytes(x[0]))
        verdict = [b for b in a["view"] if b["kind"] == "line"][0]
        assert verdict["strong"] == a["verdict"] and verdict["bad"] == (a["verdict"] == "anomalous")
    # test image 0 is the score paradigms anomaly gives the same image of the whole test set
    if run == "zero":
        ranked = anomaly_run(runs / run)
        data = load_images("digits")
        first_zero = int((data.test_y == 0).nonzero()[0])
        answer = lab.post("/api/panel/autoencoder", params={"run": run, "test": "0"}).json()
        assert torch.equal(unit(data.test_x[first_zero:first_zero + 1]), test_x)
        assert answer["score"] == pytest.approx(float(ranked["scores"][first_zero]), rel=1e-5)
        seven = lab.post("/api/panel/autoencoder", params={"run": run}, content=drawing.read_bytes()).json()
        assert seven["score"] > answer["score"]      # a seven is reconstructed worse than a zero by a zeros' network
    # a stricter quantile gives a higher threshold: the library's again
    high = lab.post("/api/panel/autoencoder", params={"run": run, "test": "0", "quantile": "0.99"}).json()
    assert high["threshold"] == pytest.approx(anomaly_threshold(trained, 0.99), rel=1e-9)
    assert high["threshold"] > threshold and high["verdict"] == ("anomalous" if high["score"] > high["threshold"]
                                                                 else "normal")


def test_bad_autoencoder_input_is_said_beside_its_control(lab, drawing):
    cases = [({"quantile": "1"}, "quantile", "between 0.5 and 0.999"), ({"quantile": "x"}, "quantile", "a number"),
             ({"test": "-1"}, "test", "between 0"), ({"test": "99999"}, "test", "must be below"),
             ({}, "image", "no image")]
    for query, field, words in cases:
        r = lab.post("/api/panel/autoencoder", params={"run": "zero", **query})
        assert r.status_code == 400 and r.json()["field"] == field and words in r.json()["error"], (query, r.text)
        assert "Traceback" not in r.text


def test_the_vae_panel_decodes_the_sliders_code_and_samples_as_paradigms_sample(lab, runs, tmp_path, capsys):
    import torch
    from PIL import Image

    trained = loaded(runs / "vae")
    q = {"run": "vae", "z1": "1.5", "z2": "-2", "z3": "0.3", "z4": "3", "n": "16", "seed": "3"}
    a = lab.post("/api/panel/vae", params=q).json()
    z = torch.zeros(1, 20)
    z[0, :4] = torch.tensor([1.5, -2, 0.3, 3])
    assert a["latent"] == 20 and a["code"] == [1.5, -2, 0.3, 3]
    assert np.array_equal(pixels(a["decoded"], 8), as_bytes(trained.decode(z)[0]))
    code, _, _ = run_cli(capsys, "sample", str(runs / "vae"), "--n", "16", "--seed", "3",
                         "--out", str(tmp_path / "s.png"))
    assert code == 0
    assert np.array_equal(png_array(a["grid"]), np.asarray(Image.open(tmp_path / "s.png")))
    assert lab.post("/api/panel/vae", params=q).json()["grid"] == a["grid"]                  # a seed: the same
    assert lab.post("/api/panel/vae", params={**q, "seed": "4"}).json()["grid"] != a["grid"]
    moved = lab.post("/api/panel/vae", params={**q, "z1": "-1.5"}).json()
    assert moved["decoded"] != a["decoded"] and moved["grid"] == a["grid"]
    assert "manifold" not in a
    for query, field in (({"z1": "3.5"}, "z1"), ({"z4": "-4"}, "z4"), ({"z2": "nan"}, "z2"), ({"n": "0"}, "n"),
                         ({"seed": "-1"}, "seed")):
        r = lab.post("/api/panel/vae", params={"run": "vae", **query})
        assert r.status_code == 400 and r.json()["field"] == field, (query, r.text)


def test_a_2d_vae_walks_its_whole_manifold_as_paradigms_sample_draws_it(lab, runs, capsys):
    import torch
    from PIL import Image
    from scipy.stats import norm

    trained = loaded(runs / "vae2")
    a = lab.post("/api/panel/vae", params={"run": "vae2", "z1": "-0.5", "z2": "1", "z3": "2"}).json()
    assert a["latent"] == 2 and a["code"] == [-0.5, 1]                                # z3, z4: no such dimension
    assert "z3, z4 unused" in a["view"][0]["text"]
    assert np.array_equal(pixels(a["decoded"], 8), as_bytes(trained.decode(torch.tensor([[-0.5, 1.0]]))[0]))
    code, _, _ = run_cli(capsys, "sample", str(runs / "vae2"), "--manifold")
    assert code == 0
    cli = np.asarray(Image.open(runs / "vae2" / "manifold.png"))          # 15 x 15 digits at 64 px, 1-px lines
    panel = png_array(a["manifold"])[::2, ::2]                            # the same at 8 px, twice enlarged
    assert cli.shape == (15 * 65 + 1,) * 2 and panel.shape == (15 * 9 + 1, 15 * 9 + 1, 3)
    for i in range(15):
        for j in range(15):
            mine = panel[i * 9 + 1:i * 9 + 9, j * 9 + 1:j * 9 + 9]
            assert np.array_equal(mine[..., 0], cli[i * 65 + 1:i * 65 + 65:8, j * 65 + 1:j * 65 + 65:8])
            assert np.array_equal(mine[..., 0], mine[..., 2])                       # grey: no red inside a cell
    q = norm.ppf(np.linspace(0.05, 0.95, 15))
    i, j = int(np.abs(q + 0.5).argmin()), int(np.abs(q - 1).argmin())    # the grid code nearest (-0.5, 1)
    assert a["cell"] == [i, j]
    framed = np.all(panel == [220, 30, 30], axis=-1)
    assert framed.sum() == 4 * 9 and framed[i * 9, j * 9:j * 9 + 10].all() and framed[i * 9 + 9, j * 9:j * 9 + 10].all()


def test_the_mae_panel_shows_the_recipes_own_reconstruction_and_loss(lab, runs, drawing):
    import torch

    from paradigms.evaluate.classifier import eval_images
    from paradigms.mae import masked_patch_loss, random_masking

    trained = loaded(runs / "mae")
    (test_x, _), _ = eval_images(runs / "mae", 3)
    for query, body, x in (({"test": "2"}, b"", test_x[2:3]), ({}, drawing.read_bytes(), drawn(drawing, (1, 8, 8)))):
        a = lab.post("/api/panel/mae", params={"run": "mae", "ratio": "0.5", "seed": "3", **query}, content=body)
        assert a.status_code == 200, a.text
        a = a.json()
        masked, pasted = trained.reconstruct(x, 0.5, torch.Generator().manual_seed(3))
        assert np.array_equal(pixels(a["masked"], 8), as_bytes(masked[0]))
        assert np.array_equal(pixels(a["reconstruction"], 8), as_bytes(pasted[0]))
        assert np.array_equal(pixels(a["original"], 8), as_bytes(x[0]))
        keep, mask = random_masking(1, 16, 0.5, torch.Generator().manual_seed(3))
        with torch.no_grad():
            loss = masked_patch_loss(trained.mae(x, keep), trained.mae.target(x), mask)
        assert a["loss"] == pytest.approx(float(loss), rel=1e-5) and a["hidden"] == 8 and a["patches"] == 16
    again = lab.post("/api/panel/mae", params={"run": "mae", "test": "2", "ratio": "0.5", "seed": "3"}).json()
    other = lab.post("/api/panel/mae", params={"run": "mae", "test": "2", "ratio": "0.5", "seed": "4"}).json()
    assert again["masked"] != other["masked"] and again["original"] == other["original"]
    most = lab.post("/api/panel/mae", params={"run": "mae", "test": "2", "ratio": "0.95"}).json()
    assert most["hidden"] == 15                                                    # one patch of 16 left to see
    default = lab.post("/api/panel/mae", params={"run": "mae", "test": "2"}).json()
    assert default["ratio"] == 0.8 and default["hidden"] == 13                    # round(16 x 0.2) = 3 seen
    for ratio in ("0.99", "0.01", "1", "abc"):
        r = lab.post("/api/panel/mae", params={"run": "mae", "test": "0", "ratio": ratio})
        assert r.status_code == 400 and r.json()["field"] == "ratio" and "Traceback" not in r.text, (ratio, r.text)
