"""Each transform does what it must; policies parse, fail clearly, and run inside a recipe."""

from __future__ import annotations

import pytest
import torch

from paradigms import augment
from paradigms.augment import TRANSFORMS, CutMix, Mixup, build
from paradigms.errors import UserError

from .test_cli import error_line, run_cli


def images(n=6, c=3, h=16, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g)


def test_greyscale_has_equal_channels():
    out = TRANSFORMS["greyscale"](p=1.0)(images())
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 1], out[:, 2])
    assert not torch.allclose(images()[:, 0], images()[:, 1])


def test_rotation_by_zero_is_the_identity_and_by_90_is_not():
    x = images()
    rot = TRANSFORMS["rotate"]()
    assert torch.allclose(rot.apply(x, {"angle": torch.zeros(6)}), x, atol=1e-5)
    assert not torch.allclose(rot.apply(x, {"angle": torch.full((6,), 90.0)}), x, atol=1e-2)
    # 90 degrees exactly is a transpose-and-flip of the pixel grid (kornia: counter-clockwise)
    r90 = rot.apply(x, {"angle": torch.full((6,), 90.0)})
    assert torch.allclose(r90, torch.rot90(x, 1, (2, 3)), atol=1e-4)


def test_mixup_with_lambda_one_returns_the_input():
    x, y = images(), torch.tensor([0, 1, 2, 0, 1, 2])
    params = {"lam": torch.tensor(1.0), "perm": torch.randperm(6), "on": torch.ones(6, dtype=torch.bool)}
    mx, my = Mixup().mix(x, y, 3, params)
    assert torch.equal(mx, x) and torch.equal(my, torch.eye(3)[y])
    params["lam"] = torch.tensor(0.25)
    mx, my = Mixup().mix(x, y, 3, params)
    assert torch.allclose(mx, 0.25 * x + 0.75 * x[params["perm"]])
    assert torch.allclose(my.sum(1), torch.ones(6))


def test_mixup_lambda_follows_beta_alpha():
    torch.manual_seed(0)
    lams = torch.stack([augment.mix.beta(1.0, "cpu") for _ in range(4000)])
    assert abs(lams.mean() - 0.5) < 0.02 and abs(lams.var() - 1 / 12) < 0.01  # Beta(1,1) = U(0,1)
    lams = torch.stack([augment.mix.beta(0.2, "cpu") for _ in range(4000)])
    assert ((lams < 0.1) | (lams > 0.9)).float().mean() > 0.6  # small alpha: mostly near 0 or 1


def test_cutout_zeroes_exactly_one_square_of_the_given_size():
    """Zero in the standardised image, as the paper (the authors cut after normalising): the dataset's mean colour."""
    mean, std = torch.tensor([0.2, 0.3, 0.4]).view(1, 3, 1, 1), torch.tensor([0.5, 0.6, 0.7]).view(1, 3, 1, 1)
    x = 0.5 + 0.5 * torch.rand(50, 3, 20, 20)  # never the mean: every zero below is the square
    cut = augment.build([{"cutout": {"size": 6, "inside": True}}], "cifar10", 3, mean=(0.2, 0.3, 0.4)).transforms[0]
    z = (cut(x) - mean) / std
    for img in z:
        zeros = (img.abs() < 1e-6).all(0).nonzero()
        assert len(zeros) == 36 and (img.abs() < 1e-6).sum() == 3 * 36
        (r0, c0), (r1, c1) = zeros.min(0).values, zeros.max(0).values
        assert (r1 - r0 + 1, c1 - c0 + 1) == (6, 6)
    # as in the paper, the default centre may sit near the border: a clipped square, never more
    x = torch.ones(50, 1, 20, 20)
    out = TRANSFORMS["cutout"](size=6, fill=0)(x)
    counts = (out == 0).flatten(1).sum(1)
    assert (counts <= 36).all() and (counts < 36).any() and (counts > 0).all()
    # without the dataset's mean (one image file): the image's own mean colour
    x = torch.rand(4, 3, 20, 20)
    out = TRANSFORMS["cutout"](size=20, inside=True)(x)
    assert torch.allclose(out, x.mean((2, 3), keepdim=True).expand_as(x))


def test_hue_shift_keeps_brightness():
    x = images()
    out = TRANSFORMS["hue"](strength=0.3, p=1.0)(x)
    assert torch.allclose(out.max(1).values, x.max(1).values, atol=1e-4)  # HSV value = max(R, G, B)
    assert not torch.allclose(out, x, atol=1e-2)


def test_colour_factors_of_one_are_identities_and_saturation_zero_is_grey():
    x = images()
    one = {"f": torch.ones(6)}
    for name in ("brightness", "contrast", "saturation"):
        assert torch.allclose(TRANSFORMS[name]().apply(x, one), x, atol=1e-5), name
    grey = TRANSFORMS["saturation"]().apply(x, {"f": torch.zeros(6)})
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-5)
    low = TRANSFORMS["contrast"]().apply(x, {"f": torch.full((6,), 0.2)})
    assert low.std() < x.std() * 0.5


def test_blur_grows_with_sigma_and_flip_crop_geometry():
    x = images(c=1, h=24, w=24)
    blur = TRANSFORMS["blur"](low=0.5, high=3.0)
    weak = blur.apply(x, {"sigma": torch.full((6,), 0.6)})
    strong = blur.apply(x, {"sigma": torch.full((6,), 2.5)})
    assert x.std() > weak.std() > strong.std()
    assert torch.equal(TRANSFORMS["flip"]().apply(TRANSFORMS["flip"]().apply(x, {}), {}), x)
    crop = TRANSFORMS["crop"](pad=3)
    zero = {"dy": torch.zeros(6, dtype=torch.long), "dx": torch.zeros(6, dtype=torch.long)}
    assert torch.equal(crop.apply(x, zero), x)
    shifted = crop.apply(x, {"dy": torch.zeros(6, dtype=torch.long), "dx": torch.full((6,), 2)})
    assert torch.equal(shifted[..., :-2], x[..., 2:]) and (shifted[..., -2:] == 0).all()


def test_resized_crop_of_the_whole_image_is_the_identity():
    x = images()
    box = torch.tensor([[0.0, 0.0, 16.0, 16.0]]).repeat(6, 1)
    assert torch.allclose(TRANSFORMS["resized_crop"]().apply(x, {"box": box}), x, atol=1e-5)


def test_cutmix_labels_weigh_the_exact_kept_area():
    torch.manual_seed(1)
    x, y = images(n=8), torch.arange(8) % 4
    cm = CutMix()
    p = cm.sample(8, 16, 16, "cpu")
    mx, my = cm.mix(x, y, 4, p)
    y0, y1, x0, x1 = p["box"].tolist()
    kept = 1 - (y1 - y0) * (x1 - x0) / 256
    assert torch.equal(mx[..., y0:y1, x0:x1], x[p["perm"]][..., y0:y1, x0:x1])
    assert torch.allclose(my.sum(1), torch.ones(8))
    assert torch.allclose(my.gather(1, y.view(-1, 1)).squeeze(1)[p["perm"] != torch.arange(8)].min(),
                          torch.tensor(kept), atol=1e-6) or kept == 1.0


def test_same_seed_same_batch_other_seed_other_batch():
    spec = ["rotate", "scale", "resized_crop", "crop", "flip", "brightness", "contrast", "saturation", "hue",
            {"greyscale": {"p": 0.5}}, {"blur": {"p": 0.5}}, "cutout", "mixup"]
    pol = build(spec, "cifar10", 3)
    x, y = images(n=16), torch.arange(16) % 10

    def run(seed):
        torch.manual_seed(seed)
        return pol(x, y, 10)

    (a, ya), (b, yb), (c, _) = run(5), run(5), run(6)
    assert torch.equal(a, b) and torch.equal(ya, yb) and not torch.equal(a, c)
    assert a.shape == x.shape and ya.shape == (16, 10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
def test_cpu_and_gpu_agree():
    pol = build(["rotate", "scale", "crop", "flip", "brightness", "contrast", "hue", "blur", "cutout"], "cifar10", 3)
    x = images(n=8)
    params = [t.sample(8, 16, 16, "cpu") for t in pol.transforms]
    a, b = x, x.cuda()
    for t, p in zip(pol.transforms, params):
        a, b = t(a, p), t(b, {k: v.cuda() for k, v in p.items()})
    assert torch.allclose(a, b.cpu(), atol=1e-4)


def test_a_policy_without_labels_returns_just_the_images():
    """Self-supervised views: no labels in, augmented images out, as with labels under the same seed."""
    pol = build(["rotate", "resized_crop", "flip", "brightness", "cutout"], "cifar10", 3)
    x, y = images(n=8), torch.arange(8) % 4
    torch.manual_seed(3)
    views = pol(x)
    torch.manual_seed(3)
    with_labels, same_y = pol(x, y, 4)
    assert isinstance(views, torch.Tensor) and views.shape == x.shape and not torch.equal(views, x)
    assert torch.equal(views, with_labels) and torch.equal(same_y, y)
    out, no_y, notes = pol.trace(x)
    assert out.shape == x.shape and no_y is None and len(notes) == 8


def test_mixing_without_labels_fails_with_one_clear_line():
    for mix in ("mixup", "cutmix"):
        pol = build(["flip", mix])
        with pytest.raises(UserError, match=f"augment {mix} needs labels.*drop {mix} from augment"):
            pol(images())
        with pytest.raises(UserError, match="needs labels"):
            pol.trace(images())
    x, y = pol(images(), torch.arange(6) % 3, 3)  # with labels it still mixes
    assert y.shape == (6, 3)


def test_standard_follows_the_dataset_registry():
    from paradigms.data import registry

    for name in registry.IMAGE_DATASETS:
        assert augment.standard(name) == list(registry.lookup(name).standard_augment), name
    assert augment.STANDARD["digits"] == ["crop"]
    assert [t.name for t in build(["standard"], "imagefolder:/x", 3).transforms] == ["resized_crop", "flip"]


def test_figures_leave_the_matplotlib_backend_alone():
    import subprocess
    import sys

    code = ("import matplotlib; matplotlib.use('svg'); import paradigms.augment.figures; "
            "print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "svg"


def test_standard_policies():
    assert [t.name for t in build(["standard"], "cifar10", 3).transforms] == ["crop", "flip"]
    assert "flip" not in [t.name for t in build(["standard"], "digits", 1).transforms]
    assert not build([], "cifar10", 3)


def test_bad_policies_fail_with_one_clear_line():
    with pytest.raises(UserError, match="unknown augmentation 'rotat'; did you mean 'rotate'"):
        build(["rotat"])
    with pytest.raises(UserError, match=r"augment cutout.size = 0.*valid: >= 1"):
        build([{"cutout": {"size": 0}}])
    for bad in (2, "grey"):
        with pytest.raises(UserError, match=r"augment cutout.fill = .*'mean'.*\[0, 1\]"):
            build([{"cutout": {"fill": bad}}])
    with pytest.raises(UserError, match=r"augment rotate.degrees = 400.*<= 180"):
        build([{"rotate": {"degrees": 400}}])
    with pytest.raises(UserError, match="unknown parameter 'sigma'"):
        build([{"cutout": {"sigma": 1}}])
    with pytest.raises(UserError, match="hue needs colour .* 'mnist' has 1 channel"):
        build(["hue"], "mnist", 1)


def test_cli_rejects_hue_on_greyscale_digits(capsys):
    line = error_line(capsys, "run", "supervised", "--set", "augment=[crop, hue]")
    assert "hue needs colour" in line and "digits" in line


def test_augment_command_draws_the_grid_and_the_sheet(capsys, tmp_path):
    from PIL import Image

    code, out, err = run_cli(capsys, "augment", "--dataset", "digits", "--index", "3", "--out", str(tmp_path / "g.png"))
    assert code == 0, err
    assert Image.open(tmp_path / "g.png").size[0] > 600
    img = (images(n=1, h=40, w=48)[0].permute(1, 2, 0) * 255).byte().numpy()
    Image.fromarray(img).save(tmp_path / "cat.png")
    code, _, err = run_cli(capsys, "augment", str(tmp_path / "cat.png"), "--sheet", "--out", str(tmp_path / "s.png"))
    assert code == 0, err
    assert (tmp_path / "s.png").is_file()
    code, _, err = run_cli(capsys, "augment", str(tmp_path / "cat.png"), "--n", "5", "--policy", "[rotate, {cutout: {size: 8}}]",
                           "--out", str(tmp_path / "p.png"))
    assert code == 0, err
    assert "out of range" in error_line(capsys, "augment", "--dataset", "digits", "--index", "99999")
    assert "cannot" in error_line(capsys, "augment", str(tmp_path / "missing.png"))


def test_a_policy_trains_inside_the_supervised_recipe(tmp_path, capsys):
    run = tmp_path / "aug"
    code, _, err = run_cli(capsys, "run", "supervised", "--quiet", "--out", str(run), "--set", "train.epochs=2",
                           "--set", "augment=[standard, {cutout: {size: 3}}, mixup, cutmix]")
    assert code == 0, err
    assert (run / "figures" / "augmented_batch.png").is_file()
    assert "augmented_batch" in (run / "report.html").read_text()


def test_a_policy_is_typed_as_yaml_or_names_and_one_strength_sets_the_bare_ones():
    from paradigms.augment import STRENGTH, at_strength, read_policy

    assert read_policy("rotate, blur") == ["rotate", "blur"] == read_policy("[rotate, blur]")
    assert read_policy("rotate, cutout: {size: 8}") == ["rotate", {"cutout": {"size": 8}}]
    assert read_policy("{rotate: {degrees: 3}}") == [{"rotate": {"degrees": 3}}] and read_policy("  ") == []
    with pytest.raises(UserError, match="not valid YAML"):
        read_policy("[rotate")
    assert at_strength(["rotate", {"rotate": {"degrees": 5}}, "flip"], 0.5) == [
        {"rotate": {"degrees": 45.0}}, {"rotate": {"degrees": 5}}, "flip"]      # written settings and flip kept
    assert at_strength(["blur"], 0.6) == [{"blur": {"low": 0.6, "high": 1.8}}]
    assert set(STRENGTH) <= set(TRANSFORMS)
    for s in (0, 0.05, 0.5, 1):                                 # every strength in [0, 1] is a valid setting
        assert len(build(at_strength(list(STRENGTH), s), channels=3).transforms) == len(STRENGTH)
    with pytest.raises(UserError, match="strength=1.5 is out of range"):
        at_strength(["rotate"], 1.5)
    weak, strong = (build(at_strength(["rotate"], s)).transforms[0].draw(64, 16, 16, "cpu")["angle"].abs().max()
                    for s in (0.1, 1.0))
    assert float(weak) <= 9 and float(strong) > 45                             # 90 s degrees either way


def test_grid_images_are_the_versions_of_the_grid_and_follow_the_seed():
    from paradigms.augment.figures import grid_images

    img = images(n=1)[0]
    policy = build([{"rotate": {"degrees": 30}}, {"cutout": {"size": 4, "p": 0.5}}], channels=3)
    torch.manual_seed(2)
    out, labels = grid_images(img, 18, policy)
    torch.manual_seed(2)
    again, same = grid_images(img, 18, policy)
    assert out.shape == (18, 3, 16, 16) and torch.equal(out, again) and labels == same
    assert all(t.startswith("rotate") for t in labels) and any("cutout" in t for t in labels)
    assert len({round(float(v.sum()), 3) for v in out}) > 10                     # each version its own
    torch.manual_seed(2)
    lecture, _ = grid_images(img, 18)                                           # the lecture's mix
    assert lecture.shape == out.shape and not torch.equal(lecture, out)


def test_the_augment_command_takes_names_and_a_strength(capsys, tmp_path):
    from PIL import Image

    Image.fromarray((images(n=1)[0].permute(1, 2, 0) * 255).byte().numpy()).save(tmp_path / "cat.png")
    code, _, err = run_cli(capsys, "augment", str(tmp_path / "cat.png"), "--policy", "rotate, blur", "--strength",
                           "0.3", "--n", "4", "--out", str(tmp_path / "p.png"))
    assert code == 0 and (tmp_path / "p.png").is_file(), err
    assert "strength=2 is out of range" in error_line(capsys, "augment", str(tmp_path / "cat.png"), "--strength", "2")
    assert "did you mean 'rotate'" in error_line(capsys, "augment", str(tmp_path / "cat.png"), "--policy", "rotat")
