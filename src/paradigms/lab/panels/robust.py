"""The robustness panels: augmentation's "1 => 18" grid of one picture (``paradigms augment``), a universal patch
pasted where the user points (``paradigms attack --method patch``), and a certificate by randomized smoothing
(``paradigms certify``)."""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from .base import (MAX_TEST_INDEX, NETWORKS, SEEDED, Control, Panel, PanelError, bars, figures, grid_png, image_input,
                   integer, line, meta, number, picture, png, table, text)

MAX_SEED = 2 ** 31 - 1


# -- augment: one picture, n training pictures ------------------------------------------------------------------------
def augment(run: Path, query: dict, body: bytes) -> dict:
    """The lecture's "1 image => 18 training images" for a drawing, an upload or a test image at the run's input shape:
    the very versions ``paradigms augment FILE --policy P --strength S --n N --seed SEED`` draws
    (``augment.figures.grid_images``), as one grid, with what was done to each."""
    import torch

    from ...augment import at_strength, build, read_policy
    from ...augment.figures import grid_columns, grid_images
    from ...engine.trainer import load_config

    net = NETWORKS.get(run)
    x, label, source = image_input(run, query, body, net.input_shape)        # (1, C, H, W) in [0, 1]
    written = text(query, "transforms", "", 500)
    strength = None if query.get("strength") in (None, "") else number(query, "strength", 0.5, 0.0, 1.0)
    n = integer(query, "n", 18, 1, 100)
    seed = integer(query, "seed", 0, 0, MAX_SEED)
    try:
        spec = read_policy(written)
        if spec and strength is not None:
            spec = at_strength(spec, strength)
        policy = build(spec, getattr(load_config(run), "dataset", ""), x.shape[1]) if spec else None
    except UserError as e:
        raise PanelError("transforms", str(e)) from None
    with SEEDED:                          # as the command: torch.manual_seed(seed), then the n versions
        torch.manual_seed(seed)
        out, labels = grid_images(x[0], n, policy)                          # (n, C, H, W), what was done to each
    grid = grid_png(torch.cat([x, out]), grid_columns(n))
    said = source if label is None else f"{source} (a {net.classes[label]})"
    what = repr(policy) if policy else "the lecture's mix: each family on about half the pictures"
    return {"source": said, "n": n, "seed": seed, "strength": strength, "policy": what, "labels": labels,
            "grid": grid, "view": [
                line("Each time the network meets this picture in training it sees another version of it: ",
                     strong=f"1 image => {n} training images"),
                figures((grid, f"{said}, then {n} versions (read left to right)"), cls="grid"),
                table(["version", "what was done"], [[i + 1, t] for i, t in enumerate(labels)]),
                meta(f"transforms: {what}; seed {seed} (paradigms augment FILE --seed {seed} draws the same)")]}


# -- patch: a universal sticker, pasted where the user points ---------------------------------------------------------
def patch(run: Path, query: dict, body: bytes) -> dict:
    """One of the run's universal patches (``paradigms attack RUN --method patch --target T``) pasted on a picture with
    its centre at (px, py), rotated by ``angle`` and scaled by ``scale`` (``adversarial.patch.place`` and ``paste``):
    the network's prediction before and after."""
    import torch

    from ...adversarial.patch import paste, place
    from ...adversarial.runs import load_patch, patches
    from ...evaluate.classifier import class_probabilities

    net = NETWORKS.get(run)
    kept = patches(run)
    chosen = pick_patch(run, kept, query.get("patch") or "")
    x, source = picture(run, query, body, net)                             # (1, C, H, W) in [0, 1]
    px, py = number(query, "px", 0.5, 0.0, 1.0), number(query, "py", 0.5, 0.0, 1.0)
    angle = number(query, "angle", 0.0, -180.0, 180.0)
    scale = number(query, "scale", 1.0, 0.5, 1.5)
    sticker = load_patch(chosen["path"], x.shape[1])                        # (C, k, k) in [0, 1]
    _, _, h, w = x.shape
    k = sticker.shape[-1]
    if k > min(h, w):
        raise PanelError("patch", f"{chosen['name']} is {k}x{k} pixels: larger than the {h}x{w} picture")
    where = place(px, py, k, h, w, angle, scale)
    pasted = paste(x, sticker, where)                                       # A(p, x, t): the patch pasted at t
    before, after = class_probabilities(net, torch.cat([x, pasted]))       # (K,) each
    classes = net.classes
    said, says = classes[int(before.argmax())], classes[int(after.argmax())]
    target = chosen["target"]
    fooled = says == target and said != target
    verdict = (f"fooled: it says {says!r}" if fooled else f"it still says {says!r}" if says == said else
               f"it now says {says!r}")
    success = chosen["success"]
    return {"source": source, "patch": chosen["name"], "patches": [p["name"] for p in kept],
            "target": target, "px": px, "py": py, "angle": angle, "scale": scale, "side": k,
            "top": int(where["top"][0]), "left": int(where["left"][0]), "classes": classes,
            "original": png(x[0]), "sticker": png(sticker), "patched": png(pasted[0]),
            "before": dict(zip(classes, before.tolist())), "after": dict(zip(classes, after.tolist())),
            "prediction_before": said, "prediction_after": says, "fooled": fooled, "view": [
                figures((png(x[0]), f"before: {said}"), (png(sticker), f"the patch, trained to make {target!r}"),
                        (png(pasted[0]), f"after: {says} (point or drag to move the patch)", {"pick": ["px", "py"]})),
                line(f"With a {k}x{k}-pixel patch pasted on it, the network says {says!r} where it said {said!r}: ",
                     strong=verdict, bad=fooled),
                meta("before:"), bars(dict(zip(classes, before.tolist())), said),
                meta("after:"), bars(dict(zip(classes, after.tolist())), says),
                meta(f"{chosen['name']}: trained to say {target!r}, it did on "
                     + (f"{success:.0%}" if isinstance(success, (int, float)) else "?")
                     + " of held-out pictures at random places; here its centre at "
                     f"({px:.2f}, {py:.2f}), angle {angle:g}°, scale {scale:g}")]}


def pick_patch(run: Path, kept: list[dict], wanted: str) -> dict:
    """The patch ``wanted`` names (its result's number, ``3``, or name, ``003-attack-patch-to-3``), the latest when
    it names none; a :class:`PanelError` saying how to make one when the run has none."""
    if not kept:
        raise PanelError("patch", f"{run.name} has no patch yet: make one with `paradigms attack {run} --method patch "
                                  "--target CLASS` (a few hundred --patch-steps), then ask again")
    if not wanted.strip():
        return kept[-1]
    for p in kept:
        if wanted.strip() in (str(p["index"]), p["name"]):
            return p
    names = ", ".join(f"{p['index']} ({p['name']})" for p in kept)
    raise PanelError("patch", f"{run.name} has no patch {wanted[:40]!r}; its patches: {names}")


# -- certify: randomized smoothing's certificate for one picture ------------------------------------------------------
MAX_SIGMA = 4.0


def certify_stream(run: Path, query: dict, body: bytes):
    """The smoothed classifier's prediction for one picture and its certified L2 radius (Cohen et al. 2019's CERTIFY,
    ``adversarial.certify.certifying_image``): for ``test=i`` the row ``paradigms certify`` writes for evaluation image
    i with the same sigma, n, n0, alpha, seed and batch (its noise seeded as there); a picture sent is seeded as index
    0. Yields ``{"done", "of", "unit"}`` as the noisy samples are classified (about every 1% of them), then the answer;
    closing it stops the work. Every setting is read before the first piece."""
    import torch
    from scipy.stats import norm

    from ...adversarial.certify import certifying_image, image_seed, training_sigma
    from ...adversarial.smoothing import ABSTAIN, Smooth

    net = NETWORKS.get(run)
    trained = training_sigma(run)
    sigma = number(query, "sigma", trained or 0.25, 0.0, MAX_SIGMA)
    if sigma == 0:
        raise PanelError("sigma", f"sigma must be above 0 (the noise's standard deviation, at most {MAX_SIGMA:g})")
    n = integer(query, "n", 1000, 1, 100_000)
    n0 = integer(query, "n0", 100, 1, 10_000)
    if n0 >= n:
        raise PanelError("n0", f"n0={n0} must be smaller than n={n}: n0 samples pick the class, n (many more) "
                               "estimate its probability")
    alpha = number(query, "alpha", 0.001, 0.0, 0.5)
    if alpha == 0:
        raise PanelError("alpha", "alpha must be above 0: the chance that the certificate is wrong, e.g. 0.001")
    seed = integer(query, "seed", 0, 0, MAX_SEED)
    batch = integer(query, "batch", 1000, 1, 10_000)
    x, label, source = image_input(run, query, body, net.input_shape)        # (1, C, H, W) in [0, 1]
    index = 0 if body else integer(query, "test", 0, 0, MAX_TEST_INDEX)
    smooth = Smooth(net, len(net.classes), sigma)

    of, shown = n0 + n, 0
    yield {"done": 0, "of": of, "unit": "noisy samples"}
    steps = certifying_image(smooth, x, index, n0, n, alpha, batch, seed)
    try:
        while True:
            try:
                done = next(steps)
            except StopIteration as stop:
                predict, rad = stop.value
                break
            if done - shown >= of / 100:                  # about a hundred pieces, whatever the batch
                shown = done
                yield {"done": done, "of": of, "unit": "noisy samples"}
    finally:
        steps.close()                                     # the browser went away: no more noise is drawn
    yield {"done": of, "of": of, "unit": "noisy samples"}

    classes = net.classes
    noisy = x[0] + sigma * torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(image_seed(seed, index)))
    abstained = predict == ABSTAIN
    p_lower = None if abstained else float(norm.cdf(rad / sigma))          # R = sigma Phi^-1(pA)  =>  pA = Phi(R / sigma)
    said = source if label is None else f"{source} (a {classes[label]})"
    settings = f"σ={sigma:g}, n={n:,}, n0={n0}, α={alpha:g}, seed {seed}"
    if abstained:
        verdict = [line("Under the noise no class wins often enough to be sure at this α: the smoothed classifier ",
                        strong="abstains", bad=True)]
    else:
        verdict = [line(f"The smoothed classifier says {classes[predict]!r}, ",
                        strong=f"certified within an L2 radius of {rad:.3f}",
                        bad=label is not None and predict != label),
                   meta(f"no perturbation δ with ‖δ‖₂ < {rad:.3f} can change that answer (with probability at least "
                        f"1 − α): its class won at least {p_lower:.1%} of the noisy samples (a lower bound), and "
                        f"R = σ Φ⁻¹(pA)")]
    if trained is not None and trained != sigma:
        verdict.append(meta(f"the network trained under noise σ={trained:g}; certified here at σ={sigma:g}"))
    yield {"source": said, "index": None if body else index, "sigma": sigma, "n": n, "n0": n0, "alpha": alpha,
           "seed": seed, "batch": batch, "trained_sigma": trained, "predict": predict,
           "prediction": "abstain" if abstained else classes[predict], "radius": rad, "p_lower": p_lower,
           "label": None if label is None else classes[label],
           "correct": None if label is None else predict == label, "input": png(x[0]), "noisy": png(noisy),
           "view": [figures((png(x[0]), said), (png(noisy), f"one noisy copy, σ={sigma:g}")), *verdict,
                    meta(f"{settings}" + ("" if body else f": the row `paradigms certify` writes for image {index}"))]}


def certify(run: Path, query: dict, body: bytes) -> dict:
    """:func:`certify_stream`'s answer alone (POST /api/panel/certify)."""
    for piece in certify_stream(run, query, body):
        pass
    return piece


PANELS = [
    Panel("augment", "Augmentation: 1 image => 18", ("classifier",),
          "Random transforms make many training pictures of one (rotations, crops, colour changes, cutout...): the "
          "network learns that these changes do not change the class. Name the transforms (empty: the lecture's mix; "
          "rotate, blur, cutout, contrast, ... or YAML with their settings, e.g. cutout: {size: 3}), how strong "
          "(for the transforms named bare), how many versions and the seed.", augment,
          controls=(Control("transforms", "transforms", kind="text", default="", size=36),
                    Control("strength", "strength", kind="range", default="0.5", lo=0, hi=1, step=0.05),
                    Control("n", "versions", default="18", lo=1, hi=100),
                    Control("seed", "seed", default="0", lo=0))),
    Panel("patch", "A universal adversarial patch", ("classifier",),
          "A small sticker trained (paradigms attack RUN --method patch --target T) to make the network say T "
          "wherever it is pasted, on any picture. Point at or drag on the patched picture to move it; turn and "
          "scale it. Brown et al. 2017.", patch,
          controls=(Control("patch", "patch (its number; empty: the latest)", kind="text", default="", size=6),
                    Control("px", "across", kind="range", default="0.5", lo=0, hi=1, step=0.01),
                    Control("py", "down", kind="range", default="0.5", lo=0, hi=1, step=0.01),
                    Control("angle", "angle (°)", kind="range", default="0", lo=-180, hi=180, step=5),
                    Control("scale", "scale", kind="range", default="1", lo=0.5, hi=1.5, step=0.05))),
    Panel("certify", "Certify by randomized smoothing", ("classifier",),
          "The smoothed classifier answers the class the network gives most often under Gaussian noise of size σ; "
          "when that class wins clearly, no change of the picture smaller than the radius R = σ Φ⁻¹(pA) (in L2) can "
          "change its answer (Cohen et al. 2019). n noisy samples estimate pA; more samples, larger certified radii. "
          "σ empty: the noise the run trained with (else 0.25).", certify,
          stream=certify_stream, streams="progress", button="certify",
          controls=(Control("sigma", "σ", default="", lo=0, hi=MAX_SIGMA, step=0.05),
                    Control("n", "n (samples)", default="1000", lo=2, hi=100_000),
                    Control("n0", "n0 (selection)", default="100", lo=1, hi=10_000),
                    Control("alpha", "α", default="0.001", lo=0, hi=0.5, step=0.0001),
                    Control("seed", "seed", default="0", lo=0),
                    Control("batch", "batch", default="1000", lo=1, hi=10_000))),
]
