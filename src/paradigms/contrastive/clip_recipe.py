"""The ``clip`` recipe: an image tower and a text tower trained to agree on image-caption pairs, then a classifier made
from label text alone (Radford et al. 2021; the objective: :mod:`.clip`).

    paradigms run clip --dataset fashion-mnist
    paradigms run clip --dataset cifar10 --set text=minilm --set 'held_out_classes=[cat, truck]'
    paradigms zero-shot runs/clip-fashion-mnist shoe.png shirt.png --labels "sneaker,shirt,bag"

Captions come from a labelled dataset: at every step each training image of class c is paired with
``template.format(name_c)``, the template drawn uniformly from ``templates`` ("a photo of a {}.", "a blurry photo of a
{}.", ...); ``held_out_templates`` are never shown in training, and the images of ``held_out_classes`` are left out of
training altogether, so their names appear in no caption.

    image tower   x -> f(x) -> W_i f(x)                     f: a paradigms.nets network without its head   (N, D)
    text tower    caption -> [CLS] caption [SEP] -> transformer -> mean over the tokens -> W_t            (N, D)
    loss          clip_loss(image, text, s)                 the symmetric cross-entropy of the batch, s learned

The text tower is ``scratch`` (a small bidirectional transformer whose vocabulary is the training captions' words
and characters: a word no caption holds is spelled out in characters it has no meaning for) or a pretrained
BERT-family encoder, ``minilm`` (all-MiniLM-L6-v2) or a folder, *locked*: no gradient reaches it and only W_t is
trained (LiT's locked tower, Zhai et al. 2022, on the text side), so a class name never seen in training still lands
where its meaning is. Each distinct caption of a batch goes through the text transformer once (labels repeat within a
batch); a locked tower's features of a caption are computed once per run. Both towers pool by the mean over tokens
(MiniLM's own pooling; CLIP's text tower is causal and takes the [EOS] token's state). Under DDP each rank's pairs are
its own negatives (the paper gathers them across devices).

Captions built from labels repeat: a batch of 256 over 10 classes holds some 25 captions naming each class, and CLIP's
loss counts all but the image's own as negatives (the paper's web captions are nearly all distinct). We keep the
paper's objective; zero-shot accuracy is what says whether the towers agree.

Evaluation on the test set: zero-shot accuracy with one prompt (the first template), with the prompt ensemble of the
training templates and with the held-out templates; on the held-out classes' images, choosing among the held-out
names (chance: one in their number); retrieval R@1 and R@5 both ways between the first ``retrieval_size`` test images
and a caption for each (a caption answers an image, and an image a caption, when they name the same class); and at
the end the kNN and linear probe of f (:mod:`paradigms.transfer.probe`, as every encoder).
"""

from __future__ import annotations

import textwrap

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

from .. import augment, optim
from ..config import Section
from ..data.subset import ImageRecipeConfig
from ..data.tokenize import BERT_SPECIALS, kept_tokenizer, text_batch, word_tokenizer
from ..errors import UserError
from ..nets import NetConfig, build_encoder, to_device
from ..nets.transformer import Transformer, TransformerConfig, mean_pool
from ..optim import OptimConfig
from ..recipes import EncoderRecipe, register
from ..transfer import probe
from .clip import (HELD_OUT_TEMPLATES, TEMPLATES, LogitScale, check_template, class_embeddings, clip_loss,
                   retrieval_recall)

WORDS = {**{str(i): w for i, w in enumerate("zero one two three four five six seven eight nine".split())},
         "T-shirt/top": "t-shirt", "Ankle boot": "ankle boot"}
"""The word a caption uses for a dataset's class name, where the name itself is not a word (otherwise: the name in
lower case, underscores as spaces)."""


class TextConfig(Section):
    """The text tower trained from scratch: a bidirectional pre-norm transformer."""

    n_layer: int = Field(2, ge=1, le=48)
    n_head: int = Field(4, ge=1)
    n_embd: int = Field(128, ge=8)
    max_tokens: int = Field(32, ge=4, le=512, description="a text is cut to this many tokens ([CLS] and [SEP] "
                            "included)")

    def transformer(self, vocab_size: int) -> Transformer:
        """The tower's untrained transformer over a vocabulary of ``vocab_size`` tokens."""
        try:
            return Transformer(TransformerConfig(vocab_size=vocab_size, block_size=self.max_tokens,
                                                 n_layer=self.n_layer, n_head=self.n_head, n_embd=self.n_embd,
                                                 causal=False, norm_first=True))
        except ValueError as e:   # n_embd not divisible by n_head
            raise UserError(f"text_model: {e}") from None


class CLIPConfig(ImageRecipeConfig):
    recipe: str = "clip"
    dataset: str = "digits"
    model: NetConfig = Field(NetConfig(name="resnet", width=16), description="the image tower's encoder f (its head "
                             "is dropped: a linear map to the joint space follows it)")
    text: str = Field("scratch", description="the text tower: scratch (a transformer trained with the image tower, "
                      "see text_model) | minilm (all-MiniLM-L6-v2, locked) | a Hugging Face BERT folder (locked)")
    text_model: TextConfig = TextConfig()
    embed_dim: int = Field(128, ge=2, description="the joint embedding space's width (CLIP's ResNet-50: 1024)")
    augment: list[str | dict[str, dict | None]] = Field([], description="train-time augmentation of the images "
                                                        "(paradigms.augment; CLIP used a random crop alone)")
    class_names: list[str] | None = Field(None, description="the words captions use for the classes, in class order "
                                          "(default: the dataset's class names, digits as words)")
    templates: list[str] = Field(list(TEMPLATES), description="caption templates for training, each with one {} for "
                                 "the class name; the first is the one-prompt zero-shot classifier's")
    held_out_templates: list[str] = Field(list(HELD_OUT_TEMPLATES), description="templates never used in training: "
                                          "zero-shot with these measures generalisation beyond the wording")
    held_out_classes: list[str] = Field([], description="class names whose images and captions training never sees "
                                        "(at least two; e.g. [cat, truck]): zero-shot on them needs a pretrained, "
                                        "locked text tower")
    init_temperature: float = Field(0.07, gt=0, le=1, description="the learned temperature's start (CLIP: 0.07)")
    max_logit_scale: float = Field(100.0, gt=1, description="the logit scale 1/T is clipped here (CLIP: 100)")
    retrieval_size: int = Field(1000, ge=5, description="image-text retrieval on the first N test images")
    knn_k: int = Field(200, ge=1, description="kNN evaluation of f: the neighbours that vote")
    probe: bool = Field(True, description="kNN and the linear probe of f at the end of training")
    optim: OptimConfig = OptimConfig(name="adamw", lr=1e-3, weight_decay=0.1, schedule="warmup-cosine", warmup=0.1)

    @field_validator("templates", "held_out_templates")
    @classmethod
    def _templates(cls, v, info):
        if info.field_name == "templates" and not v:
            raise ValueError("captions need at least one template, e.g. ['a photo of a {}.']")
        return [check_template(t) for t in v]

    @field_validator("held_out_classes")
    @classmethod
    def _held_out(cls, v):
        if len(v) == 1:
            raise ValueError(f"held_out_classes={v}: hold out at least two classes (choosing among one is no test), "
                             "or none")
        if len(set(v)) != len(v):
            raise ValueError(f"held_out_classes={v} names a class twice")
        return v


class TextTower(nn.Module):
    """Texts -> (N, D): [CLS] text [SEP] through a transformer, the mean of its last states over the text's tokens
    (sentence-transformers' pooling), a linear map W_t. ``locked``: the transformer gets no gradient, is kept out of
    this module's parameters and state (its weights come from its pretrained folder, never from a checkpoint), and its
    features of a text are computed once."""

    def __init__(self, net: Transformer, tokenizer, dim: int, max_tokens: int, locked: bool):
        super().__init__()
        self.tokenizer, self.locked = tokenizer, locked
        self.max_tokens = min(max_tokens, net.cfg.block_size)
        if locked:
            self._frozen = [net.requires_grad_(False).eval()]     # a list: not a sub-module (no state, no .to())
            self._cache: dict[str, torch.Tensor] = {}
        else:
            self.net = net
        self.proj = nn.Linear(net.cfg.n_embd, dim, bias=False)    # W_t

    @property
    def transformer(self) -> Transformer:
        return self._frozen[0] if self.locked else self.net

    def _apply(self, fn, *args, **kwargs):   # .to(device) moves the locked transformer and its cache too
        super()._apply(fn, *args, **kwargs)
        if self.locked:
            self._frozen[0]._apply(fn, *args, **kwargs)
            self._cache = {k: fn(v) for k, v in self._cache.items()}
        return self

    def pooled(self, texts: list[str]) -> torch.Tensor:
        """The transformer's mean-pooled states of ``texts`` (N, C)."""
        net = self.transformer
        ids, keep = text_batch(self.tokenizer, texts, self.max_tokens, self.proj.weight.device)   # (N, T) each
        return mean_pool(net.hidden(ids, keep), keep).float()                                     # (N, C)

    def features(self, texts: list[str]) -> torch.Tensor:
        """(N, C) for ``texts``, each distinct text through the transformer once."""
        unique = list(dict.fromkeys(texts))
        if self.locked:
            new = [t for t in unique if t not in self._cache]
            if new:
                with torch.no_grad():
                    self._cache.update(zip(new, self.pooled(new)))
            f = torch.stack([self._cache[t] for t in unique])
        else:
            f = self.pooled(unique)
        where = {t: i for i, t in enumerate(unique)}
        return f[torch.tensor([where[t] for t in texts], device=f.device)]

    def forward(self, texts: list[str]) -> torch.Tensor:
        return self.proj(self.features(list(texts)))             # (N, D)


class CLIPModel(nn.Module):
    """The two towers and the temperature: ``(images (N, C, H, W) in [0, 1], N texts) -> (I (N, D), T (N, D), s)``."""

    def __init__(self, image: nn.Module, image_proj: nn.Linear, text: TextTower, logit_scale: LogitScale):
        super().__init__()
        self.image, self.image_proj, self.text, self.logit_scale = image, image_proj, text, logit_scale

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.image_proj(self.image(x))                      # W_i f(x): (N, D)

    def forward(self, x: torch.Tensor, texts: list[str]):
        return self.encode_image(x), self.text(texts), self.logit_scale()


def caption_names(classes: list[str], given: list[str] | None) -> list[str]:
    """The word for each class in captions: ``given``, else :data:`WORDS` or the class name in lower case."""
    if given is not None:
        if len(given) != len(classes) or not all(n.strip() for n in given):
            raise UserError(f"class_names: give {len(classes)} non-empty names, one per class in order "
                            f"({', '.join(classes)}); got {len(given)}")
        return [n.strip() for n in given]
    return [WORDS.get(c, c.replace("_", " ").lower()) for c in classes]


@register
class CLIP(EncoderRecipe):
    name = "clip"
    family = "contrastive"
    measures = "zero-shot test accuracy from class-name prompts (one prompt, ensemble, unseen templates and classes)"
    Config = CLIPConfig
    encoder = "image"
    network = "image"

    @classmethod
    def preset(cls, name: str, dataset: str) -> dict:
        if name == "full":  # ResNet-18 image tower, a 4-layer text tower of 256, the paper's batch scaled down
            return {"model": {"name": "resnet18", "width": 64}, "embed_dim": 256, "augment": ["crop", "flip"],
                    "text_model": {"n_layer": 4, "n_embd": 256}, "train": {"epochs": 100, "batch_size": 512,
                                                                           "eval_every": 10}}
        if dataset == "cifar10":
            return {"augment": ["crop", "flip"], "train": {"epochs": 10, "batch_size": 256, "eval_every": 5}}
        if dataset in ("mnist", "fashion-mnist"):
            return {"train": {"epochs": 5, "batch_size": 256, "eval_every": 5}}
        return {"train": {"epochs": 30, "batch_size": 128, "eval_every": 10}}

    def __init__(self, cfg: CLIPConfig, ctx):
        super().__init__(cfg, ctx)
        x, y, test_x, test_y = self.load_images()
        if not self.data.labelled:
            raise UserError(f"dataset {cfg.dataset!r} has no labels, and clip builds its captions from them; give a "
                            "labelled dataset (or use simclr or moco on unlabelled images)")
        self.names = caption_names(self.classes, cfg.class_names)
        self.held_out = self.held_out_indices()
        self.seen = [c for c in range(len(self.names)) if c not in self.held_out]
        if self.held_out:
            if x is None:
                raise UserError(f"held_out_classes needs {cfg.dataset!r} in memory (raise memory_mb above its size)")
            keep = ~torch.isin(y, torch.tensor(self.held_out))
            x, y = x[keep], y[keep]
        self.captions = [[t.format(n) for t in cfg.templates] for n in self.names]   # [class][template]
        self.augment = augment.build(cfg.augment, cfg.dataset, self.data.channels, mean=self.data.mean)
        if self.augment.mixes:
            raise UserError(f"augment: {'/'.join(m.name for m in self.augment.mixes)} mixes images, but a caption "
                            "names one class; drop it from augment")

        data = self.data
        enc = to_device(build_encoder(cfg.model, self.in_shape, data.mean, data.std), ctx.device)
        image_proj = nn.Linear(enc.embed_dim, cfg.embed_dim, bias=False).to(ctx.device)          # W_i
        text = self.build_text_tower().to(ctx.device)
        scale = LogitScale(cfg.init_temperature, cfg.max_logit_scale).to(ctx.device)
        self.model = CLIPModel(enc, image_proj, text, scale)
        self.modules = {"image": enc, "image_proj": image_proj, "text": text, "logit_scale": scale}
        self.train_model = ctx.distribute(self.model)
        self.optimizers = {"opt": optim.build_optimizer(self.model.parameters(), cfg.optim)}
        self.make_loaders(x, y, test_x, test_y)
        self.feature_loader = self.whole_loader(x, y, data.train_stream)    # the probe reads every training image
        self.trained_to: int | None = None

    def held_out_indices(self) -> list[int]:
        cfg, index = self.cfg, {}
        for i, (name, cls) in enumerate(zip(self.names, self.classes)):
            index[name.lower()] = index[cls.lower()] = i
        bad = [n for n in cfg.held_out_classes if n.strip().lower() not in index]
        if bad:
            raise UserError(f"held_out_classes: {', '.join(map(repr, bad))} not a class of {cfg.dataset}; valid: "
                            f"{', '.join(self.names)}")
        held = sorted(index[n.strip().lower()] for n in cfg.held_out_classes)
        if len(held) > len(self.names) - 2:
            raise UserError(f"held_out_classes holds out {len(held)} of {len(self.names)} classes; training needs "
                            "captions of at least two")
        return held

    def build_text_tower(self) -> TextTower:
        cfg = self.cfg
        if cfg.text.strip().lower() != "scratch":                  # pretrained, locked
            from ..language.hf import from_pretrained, resolve_model

            net, tok = from_pretrained(resolve_model(cfg.text), mlm=False)
            limit = min(cfg.text_model.max_tokens, net.hf.max_tokens or net.cfg.block_size)
            return TextTower(net, tok, cfg.embed_dim, limit, locked=True)
        tok = self.caption_tokenizer()
        return TextTower(cfg.text_model.transformer(tok.vocab_size), tok, cfg.embed_dim, cfg.text_model.max_tokens,
                         locked=False)

    def caption_tokenizer(self):
        """The words and characters of the training captions (the held-out classes' names and templates are not in
        them), a WordPiece vocabulary; saved in the run folder, as every text recipe's tokeniser."""
        text = "\n".join(self.captions[c][t] for c in self.seen for t in range(len(self.cfg.templates)))
        make = lambda: word_tokenizer(text, BERT_SPECIALS, name="the training captions")   # noqa: E731
        return kept_tokenizer(getattr(self.ctx, "run_dir", None), make, self.ctx.is_main)

    # -- training ----------------------------------------------------------------------------------------------------
    def train_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        x, y = batch                                                         # (N, C, H, W), (N,) class indices
        self.trained_to = step + 1
        if self.augment:
            x, _ = self.augment(x, y, len(self.names))
        t = torch.randint(len(self.cfg.templates), (len(y),))                # a template for each image
        texts = [self.captions[c][k] for c, k in zip(y.tolist(), t.tolist())]
        opt = self.optimizers["opt"]
        lr = optim.set_lr(opt, optim.lr_at(step, self.total_steps, self.cfg.optim))
        self.train_model.train()
        with self.ctx.autocast():
            img, txt, s = self.train_model(x, texts)                         # (N, D), (N, D), the scale
        loss = clip_loss(img, txt, s)
        optim.step(opt, loss, self.cfg.train.grad_clip)
        with torch.no_grad():                                                # the caption picked names the class
            pick = (F.normalize(img.float(), dim=1) @ F.normalize(txt.float(), dim=1).T).argmax(1)
            right = (y[pick] == y).float().mean()
        return {"loss": loss.detach(), "class_acc": right, "logit_scale": s.detach(), "lr": lr}

    # -- zero-shot ---------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        self.model.eval()
        return self.model.text(texts).float()

    @torch.no_grad()
    def image_embeddings(self, batches) -> tuple[torch.Tensor, torch.Tensor]:
        """(W_i f(x) of every image (N, D) on the CPU, labels (N,))."""
        return probe.extract(nn.Sequential(self.model.image, self.model.image_proj), batches, self.ctx)

    @torch.no_grad()
    def zero_shot(self, images: torch.Tensor, labels: list[str], templates: list[str] | None = None) -> torch.Tensor:
        """Probabilities (N, K) of images (N, C, H, W) in [0, 1] over ``labels``, each label's embedding the prompt
        ensemble of ``templates`` (default: the training templates), at the learned scale."""
        self.model.eval()
        classes = class_embeddings(self.encode_text, labels, templates or self.cfg.templates)
        emb = self.model.encode_image(images.to(self.ctx.device)).float()
        return (float(self.model.logit_scale()) * F.normalize(emb, dim=1) @ classes.T).softmax(-1).cpu()

    def zero_shot_accuracy(self, e: torch.Tensor, y: torch.Tensor, templates: list[str],
                           classes: list[int] | None = None) -> float:
        """Zero-shot accuracy of the images of ``classes`` (default: all) among those classes' names alone, each name
        the prompt ensemble of ``templates``; e (N, D) the images' normalised embeddings on the CPU, y (N,) labels."""
        classes = list(range(len(self.names))) if classes is None else classes
        w = class_embeddings(self.encode_text, [self.names[c] for c in classes], templates).cpu()   # (K, D)
        sel = torch.isin(y, torch.tensor(classes))
        pred = torch.tensor(classes)[(e[sel] @ w.T).argmax(1)]
        return float((pred == y[sel]).float().mean())

    def evaluate(self) -> dict[str, float]:
        cfg = self.cfg
        emb, y = self.image_embeddings(self.test_loader.epoch(0))
        e = F.normalize(emb, dim=1)
        accuracy = self.zero_shot_accuracy
        out = {"zero_shot_acc": accuracy(e, y, cfg.templates[:1]),
               "zero_shot_ensemble_acc": accuracy(e, y, cfg.templates)}
        if cfg.held_out_templates:
            out["zero_shot_unseen_templates_acc"] = accuracy(e, y, cfg.held_out_templates)
        if self.held_out:
            out["held_out_acc"] = accuracy(e, y, cfg.templates, self.held_out)
            out["held_out_chance"] = 1 / len(self.held_out)
            out["seen_acc"] = accuracy(e, y, cfg.templates, self.seen)
        out.update(self.retrieval(e, y))
        end = self.trained_to is None or self.trained_to >= self.total_steps
        if cfg.probe and end:
            scores, _, _ = probe.evaluate_encoder(self.model.image, self.feature_loader.epoch(0),
                                                  self.test_loader.epoch(0), len(self.names), self.ctx, k=cfg.knn_k)
            out.update(scores)
        split = "val" if cfg.val_size else "test"
        return {f"{split}/{k}": v for k, v in out.items()}

    def retrieval(self, e: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """R@1 and R@5 both ways between the first ``retrieval_size`` test images (e: their normalised embeddings, y:
        labels, in test order) and a caption for each, its template drawn with the seed."""
        n = min(len(y), self.cfg.retrieval_size)
        if n < 5:
            return {}
        labels = y[:n]
        g = torch.Generator().manual_seed(self.cfg.seed)
        k = torch.randint(len(self.cfg.templates), (n,), generator=g).tolist()
        texts = [self.captions[c][j] for c, j in zip(labels.tolist(), k)]
        t = F.normalize(self.encode_text(texts).cpu(), dim=1)                # (n, D)
        sim = e[:n] @ t.T                                                    # (n images, n captions)
        same = labels[:, None] == labels[None, :]                            # a caption names the image's class
        i2t, t2i = retrieval_recall(sim, same, (1, 5)), retrieval_recall(sim.T, same.T, (1, 5))
        return {"i2t_r1": i2t[1], "i2t_r5": i2t[5], "t2i_r1": t2i[1], "t2i_r5": t2i[5]}

    # -- figures -----------------------------------------------------------------------------------------------------
    def figures(self):
        n = self.cfg.retrieval_size
        pool, ys = [], []                                                    # the first n test images, on the CPU
        for x, y in self.test_loader.epoch(0):
            pool.append(x[: n - sum(len(p) for p in pool)].cpu())
            ys.append(y[: len(pool[-1])].cpu())
            if sum(len(p) for p in pool) >= n:
                break
        pool, ys = torch.cat(pool), torch.cat(ys)
        first = [int((ys == c).nonzero()[0]) for c in range(len(self.names)) if (ys == c).any()][:10]
        prompts = [self.cfg.templates[0].format(self.names[int(ys[i])]) for i in first]   # one per class shown
        with torch.no_grad():
            self.model.eval()
            emb = torch.cat([self.model.encode_image(b.to(self.ctx.device)).float().cpu() for b in pool.split(512)])
            emb = F.normalize(emb, dim=1)                                    # (n, D)
            text = F.normalize(self.encode_text(prompts).cpu(), dim=1)       # (K, D)
        held = [int(ys[i]) in self.held_out for i in first]
        note = ", * = a class never seen in training" if any(held) else ""
        yield "similarity", similarity_figure(pool[first], prompts, text @ emb[first].T, held, textwrap.fill(
            f"cosine similarity of test images and class prompts ({self.cfg.text} text tower{note})", 80))
        top = (text @ emb.T).topk(min(6, len(pool)), dim=1).indices         # (K, 6) each prompt's closest images
        right = ys[top] == ys[first][:, None]
        yield "retrieval", retrieval_figure(pool, top, right, prompts, held, textwrap.fill(
            f"text -> image retrieval among the first {len(pool)} test images: each prompt's six most similar "
            f"(red frame: another class{note})", 80))


def similarity_figure(images: torch.Tensor, prompts: list[str], sim: torch.Tensor, held: list[bool], title: str):
    """The paper's picture of zero-shot classification: prompts (rows) against images (columns), cosine similarity
    in each cell, the images above their columns."""
    import matplotlib.pyplot as plt

    k, m = sim.shape
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * m + 2.2, 1.6 + 0.55 * k))
    ax.imshow(sim.numpy(), cmap="viridis", aspect="auto", extent=(-0.5, m - 0.5, k - 0.5, -0.5))
    for j in range(m):                                                       # the images along the top
        img = images[j].permute(1, 2, 0).numpy()
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1,
                  extent=(j - 0.45, j + 0.45, -0.6, -1.5), interpolation="nearest")
    for i in range(k):
        for j in range(m):
            ax.text(j, i, f"{float(sim[i, j]):.2f}", ha="center", va="center", fontsize=7,
                    color="white" if sim[i, j] < sim.max() - 0.5 * (sim.max() - sim.min()) else "black")
    ax.set_yticks(range(k), [p + (" *" if h else "") for p, h in zip(prompts, held)], fontsize=8)
    ax.set_xticks([])
    ax.set_xlim(-0.5, m - 0.5)
    ax.set_ylim(k - 0.5, -1.6)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def retrieval_figure(pool: torch.Tensor, top: torch.Tensor, right: torch.Tensor, prompts: list[str],
                     held: list[bool], title: str):
    """For each prompt (a row), its most similar images, framed green when of the prompt's class, red otherwise."""
    import matplotlib.pyplot as plt

    k, m = top.shape
    fig, axes = plt.subplots(k, m, figsize=(2.6 + 0.9 * m, 0.9 * k + 0.8), squeeze=False)
    for i in range(k):
        for j in range(m):
            ax = axes[i][j]
            img = pool[int(top[i, j])].permute(1, 2, 0).numpy()
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_color("tab:green" if right[i, j] else "tab:red")
                side.set_linewidth(2.5)
        axes[i][0].set_ylabel(prompts[i] + (" *" if held[i] else ""), rotation=0, ha="right", va="center",
                              fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


__all__ = ["CLIP", "CLIPConfig", "CLIPModel", "TextConfig", "TextTower", "caption_names", "retrieval_figure",
           "similarity_figure"]
