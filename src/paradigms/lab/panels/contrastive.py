"""The contrastive panels: FaceNet's verification of two faces and the lecture's distance table (``triplet``), an
image's nearest evaluation images by a SimCLR or MoCo encoder's features with the two views it was trained on
(``neighbours``), CLIP's zero-shot answer for label names typed in the page (``clip``, as ``paradigms zero-shot RUN
IMAGE --labels ...``) and the evaluation images nearest a typed caption (``retrieval``).

What each run's evaluation set gives (its embeddings, its encoder's features) is computed once per checkpoint
(:data:`FEATURES`), so that an interaction is a lookup, one small network call and a few pictures."""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import UserError
from .base import (MAX_TEST_INDEX, NETWORKS, SEEDED, Control, Panel, PanelError, PerCheckpoint, evaluation_image,
                   figures, image_input, integer, line, meta, png, table, text)

POOL = 1000
"""The neighbours panel searches the run's first POOL evaluation images (the CLIP run's own ``retrieval_size``
for the retrieval panel; the triplet run's unseen people, at most its ``eval_n``)."""


FEATURES = PerCheckpoint()
"""Each run's evaluation features, computed once per checkpoint."""


def in_rows(items: list[tuple]) -> list[dict]:
    """Many small pictures with captions, wrapping in as many rows as A's or B's half of the page needs."""
    return [figures(*items, cls="small")]


def clip(run: Path, query: dict, body: bytes) -> dict:
    """Zero-shot: a picture against label names typed here (``paradigms zero-shot RUN IMAGE --labels ...``)."""
    import torch

    from ...contrastive.clip import label_list
    from ..images import decode_upload

    trained = NETWORKS.get(run, "recipe")
    try:
        names = label_list(text(query, "labels", "", 2000))
    except ValueError as e:
        raise PanelError("labels", f"labels {e}") from None
    unreadable = trained.unreadable(names)
    if len(unreadable) == len(names):
        raise PanelError("labels", f"the run's text tower cannot read any of them: words no training caption held; its "
                                   f"captions named the classes {', '.join(trained.names)}")
    c, h, w = trained.in_shape
    if body:                                   # as the command line reads a file: Pillow, converted, resized
        try:
            pixels = decode_upload(body, "L" if c == 1 else "RGB", (h, w))
        except UserError as e:
            raise PanelError("image", str(e)) from None
        x, source = torch.from_numpy(pixels)[None].float() / 255, "the image sent"
    elif query.get("test") not in (None, ""):
        x, _, i = evaluation_image(run, query)
        source = f"test image {i}"
    else:
        raise PanelError("image", "no image: draw one, upload one, or pick a test image")
    probs = trained.zero_shot(x, names)[0]
    return {"source": source, "input": png(x[0]), "labels": names,
            "probabilities": dict(zip(names, probs.tolist())), "prediction": names[int(probs.argmax())],
            "unreadable": {k: list(v) for k, v in unreadable.items()}}


# -- triplet: two faces, one threshold; the lecture's Jack / Bob / Tim table ------------------------------------------
def _unseen(run: Path):
    """A triplet run's recipe and, once per checkpoint, its embeddings of the unseen people's images (N, D) (unit
    vectors, the recipe's ``embed``) and its verification threshold (the recipe's ``threshold``, on the validation
    people)."""
    trained = NETWORKS.get(run, "recipe")

    def compute():
        trained.net.eval()                       # embed restores the mode it finds: eval, for requests at once

        def embed(x):
            return trained.embed(trained.net, x)
        return embed(trained.parts["test"][0]), trained.threshold(embed)
    return trained, FEATURES.get(run, "triplet", compute)


def _people(trained, query: dict) -> list[int]:
    """The people of ``people=`` (class names or indices, comma-separated), each one of the unseen people; default:
    the first three of them."""
    unseen, names = trained.test_ids.tolist(), trained.classes
    listed = ", ".join(names[i] for i in unseen)
    words = [w.strip() for w in text(query, "people", "", 500).split(",") if w.strip()]
    if not words:
        return unseen[:3]
    out = []
    for w in words:
        i = next((k for k, n in enumerate(names) if n.lower() == w.lower()), None)
        if i is None and w.isdigit() and int(w) < len(names):
            i = int(w)
        if i is None:
            raise PanelError("people", f"there is no person {w[:40]!r} in {trained.cfg.dataset}: pick among the "
                                       f"people the network never saw, {listed}")
        if i not in unseen:
            raise PanelError("people", f"{names[i]} is not among the people kept from training (the table is of "
                                       f"people the network never saw): pick among {listed}")
        if i in out:
            raise PanelError("people", f"{names[i]} is named twice; name each person once")
        out.append(i)
    if len(out) > 8:
        raise PanelError("people", f"{len(out)} people make too big a table: name at most 8")
    return out


def triplet(run: Path, query: dict, body: bytes) -> dict:
    """Two faces of the unseen people: their squared distance and the verdict at the run's threshold; and the
    lecture's table of distances between the faces of the people picked (FaceNet, Schroff et al. 2015)."""
    import torch

    from ...contrastive.losses import squared_distances
    from ...contrastive.verification import identity_distances, verify
    from ...data import unit

    trained, (emb, threshold) = _unseen(run)
    tx, ty = trained.parts["test"]                                          # uint8 (N, C, H, W), (N,)
    names, n = trained.classes, len(ty)
    ab = []
    for field, default in (("a", 0), ("b", 1)):
        i = integer(query, field, min(default, n - 1), 0, MAX_TEST_INDEX)
        if i >= n:
            raise PanelError(field, f"the unseen people have {n} images: {field} must be below {n}")
        ab.append(i)
    people = _people(trained, query)
    a, b = ab
    dist, same = verify(emb[a], emb[b], threshold)                          # ||f(a) - f(b)||^2 <= threshold?
    truly = bool(ty[a] == ty[b])
    verdict = "same person" if same else "different people"
    who = [names[int(ty[i])] for i in ab]
    # the lecture's table: two faces of each person, every pair's squared distance
    firsts = [torch.nonzero(ty == p).flatten()[:2] for p in people]          # each person's first two images
    shown = torch.cat(firsts)                                               # (M,) indices into tx
    labels = [f"{names[p]}·{j + 1}" for p, f in zip(people, firsts) for j in range(len(f))]
    d = squared_distances(emb[shown])                                       # (M, M)
    mean = identity_distances(emb, ty, people)                              # (P, P) over all their images
    count = {p: int((ty == p).sum()) for p in people}
    pictures = {int(i): png(unit(tx[i])) for i in {*ab, *shown.tolist()}}
    cells = [[labels[r], *[round(float(v), 3) for v in d[r]]] for r in range(len(shown))]
    mean = [[None if v != v else float(v) for v in r] for r in mean.tolist()]      # NaN: no pair (one image)
    mean_rows = [[f"{names[p]} ({count[p]})", *["—" if v is None else round(v, 3) for v in mean[r]]]
                 for r, p in enumerate(people)]
    return {"a": a, "b": b, "people_a_b": who, "distance": dist, "threshold": threshold, "same": same,
            "verdict": verdict, "truly_same": truly, "images": n,
            "people": [names[p] for p in people], "table": {"labels": labels, "indices": shown.tolist(),
                                                            "distances": d.tolist()},
            "mean_distances": mean,
            "view": [figures((pictures[a], f"a: image {a}, {who[0]}"), (pictures[b], f"b: image {b}, {who[1]}")),
                     line(f"squared distance ||f(a) - f(b)||² = {dist:.3f} {'≤' if same else '>'} the threshold "
                          f"{threshold:.3f}: ", strong=verdict, bad=same != truly),
                     meta(f"they are {'one person' if truly else 'two people'} ({who[0]}, {who[1]}): the verdict is "
                          f"{'right' if same == truly else 'wrong'}. The threshold is the one that best tells the "
                          f"validation people's pairs apart; 0 is the same point, 4 opposite points."),
                     *in_rows([(pictures[i], lab) for i, lab in zip(shown.tolist(), labels)]),
                     table(["", *labels], cells, "squared distances between the faces (same person: ·1 and ·2 of "
                                                "one name); small within a person, large across"),
                     table(["", *[names[p] for p in people]], mean_rows,
                           "mean squared distance between all their images (images per person in brackets)"),
                     meta(f"{n} images of {len(trained.test_ids)} people the network never saw in training "
                          f"(the run's evaluation); {len(trained.val_ids)} other people chose the threshold.")]}


# -- neighbours: what a SimCLR or MoCo encoder puts close together -------------------------------------------------
def _pool(run: Path):
    """A SimCLR or MoCo run's recipe and, once per checkpoint, its first :data:`POOL` evaluation images (N, C, H, W)
    in [0, 1], their labels (N,) and the frozen encoder's features (N, C') (``evaluate.extract``, as kNN measures)."""
    from ...evaluate.classifier import eval_images
    from ...evaluate.encoder import extract

    trained = NETWORKS.get(run, "recipe")

    def compute():
        (x, y), _ = eval_images(run, POOL, "cpu")
        trained.enc.eval()                       # extract restores the mode it finds: eval, for requests at once
        f, _ = extract(trained.enc, [(x[i:i + 512], y[i:i + 512]) for i in range(0, len(x), 512)])
        return x, y, f
    return trained, FEATURES.get(run, "neighbours", compute)


def neighbours(run: Path, query: dict, body: bytes) -> dict:
    """The ``k`` evaluation images nearest a picture by the cosine similarity of the frozen encoder's features, and
    the picture's two views as the recipe draws them for training (``two_views``, seeded)."""
    import torch

    from ...evaluate.encoder import extract, nearest

    trained, (x, y, feats) = _pool(run)
    k = integer(query, "k", 8, 1, 64)
    seed = integer(query, "seed", 0, 0, 2 ** 31 - 1)
    self_index = None                                                        # a test image: itself left out
    if not body and query.get("test") not in (None, ""):
        self_index = integer(query, "test", 0, 0, MAX_TEST_INDEX)
    if self_index is not None and self_index < len(y):                      # in the pool already
        q, label, source = x[self_index:self_index + 1], int(y[self_index]), f"test image {self_index}"
    else:
        q, label, source = image_input(run, query, body, trained.in_shape)   # (1, C, H, W) in [0, 1]
    trained.enc.eval()
    f, _ = extract(trained.enc, [(q, torch.zeros(1, dtype=torch.long))])   # (1, C')
    sims, idx = nearest(feats, f[0], k + 1)                                  # cos(f(query), f(x_i)), top k + 1
    found = [(float(s), int(i)) for s, i in zip(sims, idx) if int(i) != self_index][:k]
    with SEEDED:
        torch.manual_seed(seed)
        v1, v2 = trained.two_views(q)                                        # t(x), t'(x), as in training
    names = trained.classes
    near = [{"test": i, "label": names[int(y[i])], "similarity": s, "image": png(x[i])} for s, i in found]
    votes = {}
    for d in near:
        votes[d["label"]] = votes.get(d["label"], 0) + 1
    top = max(votes, key=votes.get)
    said = f"{source} (a {names[label]})" if label is not None else source
    verdict = (line(f"{votes.get(names[label], 0)} of the {len(near)} nearest are {names[label]}s, like the query: ",
                    strong=f"{votes.get(names[label], 0)}/{len(near)}", bad=votes.get(names[label], 0) < len(near) / 2)
               if label is not None else
               line(f"the {len(near)} nearest vote for ", strong=f"{top} ({votes[top]} of {len(near)})"))
    images = {"input": png(q[0]), "view_1": png(v1[0]), "view_2": png(v2[0])}
    return {"source": said, "k": k, "seed": seed, **images, "neighbours": near, "of": len(y),
            "view": [figures((images["input"], said), (images["view_1"], f"view t(x), seed {seed}"),
                             (images["view_2"], "view t'(x)")),
                     meta(f"the two views the recipe draws from its policy for training ({trained.views!r}): the "
                          f"encoder learned to find one from the other, so what they change is what it ignores"),
                     verdict,
                     *in_rows([(d["image"], f"test {d['test']}: {d['label']} · cos {d['similarity']:.3f}")
                            for d in near]),
                     meta(f"the {len(near)} most cosine-similar of the first {len(y)} evaluation images by the frozen "
                          f"encoder's features (the kNN evaluation's measure; labels were never used in training)"
                          + ("; the query itself left out" if self_index is not None and self_index < len(y) else ""))]}


# -- retrieval: the images nearest a typed caption in CLIP's space ----------------------------------------------------
def _clip_pool(run: Path):
    """A CLIP run's recipe and, once per checkpoint, its first ``retrieval_size`` evaluation images in [0, 1], their
    labels and their image-tower embeddings W_i f(x) (N, D) (the recipe's ``image_embeddings``)."""
    from ...evaluate.classifier import eval_images

    trained = NETWORKS.get(run, "recipe")

    def compute():
        (x, y), _ = eval_images(run, trained.cfg.retrieval_size, "cpu")
        trained.model.eval()
        emb, _ = trained.image_embeddings([(x[i:i + 512], y[i:i + 512]) for i in range(0, len(x), 512)])
        return x, y, emb
    return trained, FEATURES.get(run, "retrieval", compute)


def retrieval(run: Path, query: dict, body: bytes) -> dict:
    """Text -> image retrieval: the ``k`` evaluation images whose embeddings are most cosine-similar to a typed
    caption's (CLIP's image-text similarity, Radford et al. 2021)."""
    from ...evaluate.encoder import nearest

    trained, (x, y, emb) = _clip_pool(run)
    caption = text(query, "query", "a photo of a three.", 500).strip()
    k = integer(query, "k", 8, 1, 64)
    if not caption:
        raise PanelError("query", "type a caption to search the images with, e.g. 'a photo of a three.'")
    tower = trained.model.text
    words, unknown = tower.words(caption), tower.unknown_words(caption)
    if len(unknown) == len(words):
        raise PanelError("query", f"the run's text tower cannot read any of its words: words no training caption "
                                  f"held; its captions named the classes {', '.join(trained.names)}")
    t = trained.encode_text([caption])                                    # (1, D)
    sims, idx = nearest(emb, t[0], k)                                     # cos(T(caption), W_i f(x_i)), top k
    names = trained.names
    found = [{"test": int(i), "label": names[int(y[i])], "similarity": float(s), "image": png(x[i])}
             for s, i in zip(sims, idx)]
    lowered = {w.lower() for w in words}
    named = [c for c, n in enumerate(names) if re.fullmatch(r"\w+", n) and n.lower() in lowered]
    view = [line(f"the {len(found)} evaluation images nearest ", strong=f"\"{caption}\"")]
    if unknown:
        view.append(line(f"the text tower cannot read {', '.join(map(repr, unknown))}: words no training caption "
                         f"held, which mean nothing to it (its captions named {', '.join(names)})", cls="error"))
    if len(named) == 1:
        hits = sum(d["label"] == names[named[0]] for d in found)
        view.append(line(f"{hits} of the {len(found)} are {names[named[0]]}s: ", strong=f"{hits}/{len(found)}",
                         bad=hits < len(found) / 2))
    view += [*in_rows([(d["image"], f"test {d['test']}: {d['label']} · cos {d['similarity']:.3f}") for d in found]),
             meta(f"cosine similarity of the caption's text embedding and each image's, among the first {len(y)} "
                  f"evaluation images ({trained.cfg.text} text tower)")]
    return {"query": caption, "k": k, "images": found, "of": len(y), "unknown_words": unknown, "view": view}


PANELS = [
    Panel("triplet", "FaceNet: same person?", ("embedding",),
          "Two faces of people the network never saw: the squared distance between their embeddings, and \"same "
          "person\" when it is under the threshold the run chose on other people. Below, the lecture's table "
          "(Jack, Bob, Tim): distances between two faces of each person picked, small within a person and large "
          "across after training with the triplet loss.", triplet, recipes=("triplet",), input="none",
          controls=(Control("a", "image a", default="0", lo=0), Control("b", "image b", default="1", lo=0),
                    Control("people", "people (names or indices; empty: three)", kind="text", default="",
                            size=20))),
    Panel("neighbours", "Nearest images by a self-supervised encoder", ("encoder",),
          "A picture's nearest evaluation images by the cosine similarity of the frozen encoder's features (what "
          "the kNN evaluation counts; training never read a label), and the two augmented views the recipe makes "
          "of it for training: the encoder learned that the two views are one image. Beside it, SimCLR against "
          "MoCo on the same picture.", neighbours, recipes=("simclr", "moco"),
          controls=(Control("k", "neighbours", default="8", lo=1, hi=64), Control("seed", "views seed", default="0",
                                                                                   lo=0))),
    Panel("retrieval", "CLIP: images for a caption", ("encoder",),
          "Type a caption: the evaluation images whose CLIP embeddings are most similar to its text embedding, "
          "with their labels and similarities. A text tower trained from scratch reads only the words of its "
          "training captions (\"a photo of a three.\"); others are said.", retrieval, recipes=("clip",), input="none",
          controls=(Control("query", "caption", kind="text", default="a photo of a three.", size=30),
                    Control("k", "images", default="8", lo=1, hi=64))),
    Panel("clip", "CLIP zero-shot", ("encoder",),
          "Type class names, separated by commas: CLIP makes a classifier of them from its text tower alone, and "
          "gives the probability that the picture is each. Names no training caption held mean nothing to a text "
          "tower trained from scratch (one that reads English, --set text=minilm, reads any).", clip,
          recipes=("clip",)),
]
