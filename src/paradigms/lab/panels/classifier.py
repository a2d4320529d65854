"""The classifier's panels: a picture's class probabilities (``paradigms eval RUN --image F``), the test set's most
confident mistakes, and an attack on one picture (``paradigms attack RUN --image F``)."""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from .base import NETWORKS, SEEDED, Panel, PanelError, choice, integer, number, picture, png, ranked


def classify(run: Path, query: dict, body: bytes) -> dict:
    """Class probabilities of a drawing, an upload or a test image (``paradigms eval RUN --image F``)."""
    from ...evaluate.classifier import classify_images

    net = NETWORKS.get(run)
    x, source = picture(run, query, body, net)
    answer = classify_images(net, [x[0]])[0]
    return {"source": source, "input": png(x[0]), "prediction": answer["prediction"],
            "probabilities": answer["probabilities"], "classes": net.classes}


def mistakes(run: Path, query: dict, body: bytes) -> dict:
    """The test images the network gets wrong with the most confidence."""
    from ...evaluate.classifier import class_probabilities, eval_images

    net = NETWORKS.get(run)
    n = integer(query, "n", 1000, 1, 10_000)
    (x, y), _ = eval_images(run, n, "cpu")
    probs = class_probabilities(net, x)
    conf, pred = probs.max(1)
    wrong = (pred != y).nonzero().flatten()
    wrong = wrong[conf[wrong].argsort(descending=True)][:12]
    return {"of": len(y), "wrong": int((pred != y).sum()),
            "mistakes": [{"test": int(i), "image": png(x[i]), "said": net.classes[int(pred[i])],
                          "confidence": float(conf[i]), "true": net.classes[int(y[i])]} for i in wrong]}


def attack(run: Path, query: dict, body: bytes) -> dict:
    """FGSM or PGD on one picture (``paradigms attack RUN --image F``): the picture, the perturbation (amplified),
    the adversarial picture, and the prediction before and after."""
    from ...adversarial.runs import attack_picture, class_index, eps_bound

    net = NETWORKS.get(run)
    x, source = picture(run, query, body, net)
    method = choice(query, "method", ("pgd", "fgsm"))
    norm = choice(query, "norm", ("linf", "l2"))
    eps = number(query, "eps", 0.1, 0.0, eps_bound(norm, net.input_shape))
    steps = integer(query, "steps", 10, 1, 200)
    seed = integer(query, "seed", 0, 0, 2 ** 31 - 1)
    tgt = None
    if query.get("target") not in (None, ""):
        try:
            tgt = class_index(query["target"], net.classes)
        except UserError as e:
            raise PanelError("target", str(e).replace("--target", "target")) from None
    with SEEDED:
        adv, p_clean, p_adv = attack_picture(net, x, eps, method, norm, steps, None, 1, tgt, seed)
    delta = adv[0] - x[0]
    amplified = (delta / (2 * delta.abs().max().clamp_min(1e-12)) + 0.5) if eps > 0 else delta + 0.5
    return {"source": source, "eps": eps, "method": method, "norm": norm, "steps": steps, "seed": seed,
            "target": net.classes[tgt] if tgt is not None else None, "classes": net.classes,
            "original": png(x[0]), "perturbation": png(amplified), "adversarial": png(adv[0]),
            "linf": float(delta.abs().max()), "l2": float(delta.norm()),
            "before": ranked(p_clean[0], net.classes, 3), "after": ranked(p_adv[0], net.classes, 3)}



PANELS = [
    Panel("classify", "Classify a drawing", ("classifier",),
          "Draw a digit (white on black, as the training images) or upload a picture: the network's probability for "
          "each class. Below, the test images it gets wrong with the most confidence.", classify),
    Panel("attack", "Attack one picture", ("classifier",),
          "FGSM (one step) or PGD (many, projected) moves each pixel by at most epsilon to change the network's "
          "answer. Slide epsilon and watch the prediction give way; a second run beside it (say, trained "
          "adversarially) faces the same attack on the same picture.", attack),
]

EXTRA = {"mistakes": mistakes}
