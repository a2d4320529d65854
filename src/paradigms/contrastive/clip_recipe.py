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

The towers are :mod:`.clip_towers`, the figures :mod:`.clip_figures`. The text tower is ``scratch`` (a small bidirectional transformer whose vocabulary is the training captions' words
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
the end the kNN and linear probe of f (:mod:`paradigms.evaluate`, as every encoder).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

from .. import augment, optim
from ..data.subset import ImageRecipeConfig
from ..data.tokenize import BERT_SPECIALS, kept_tokenizer, word_tokenizer
from ..errors import UserError
from ..evaluate import evaluate_encoder, extract
from ..nets import NetConfig, build_encoder, to_device
from ..optim import OptimConfig
from ..recipes import EncoderRecipe, register
from .clip import (HELD_OUT_TEMPLATES, TEMPLATES, LogitScale, check_template, class_embeddings, clip_loss,
                   retrieval_recall)
from .clip_figures import report_figures
from .clip_towers import CLIPModel, TextConfig, TextTower, caption_names

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


@register
class CLIP(EncoderRecipe):
    name = "clip"
    family = "contrastive"
    measures = "zero-shot test accuracy from class-name prompts (one prompt, ensemble, unseen templates and classes)"
    Config = CLIPConfig
    encoder = "image"
    network = "image"
    about = ("CLIP (Radford et al. 2021, \"Learning transferable visual models from natural language supervision\") "
             "trains an image tower and a text tower to agree: in a batch of N image-caption pairs, the N x N cosine "
             "similarities, scaled by a learned temperature, must pick each image's own caption and each caption's "
             "own image (a symmetric cross-entropy). Here the captions are built from a labelled dataset, each "
             "image's class name in a template drawn from a list (\"a photo of a {}.\", ...), and the text tower is "
             "trained from scratch or is a pretrained encoder (MiniLM) kept frozen with only its projection learned "
             "(a locked tower, as in LiT, Zhai et al. 2022, on the text side). A classifier then comes from label "
             "text alone: each class is the embedding of its name in a prompt and an image goes to the most similar "
             "one (zero-shot), measured with one prompt, with an ensemble of prompts, with templates never used in "
             "training and, with held_out_classes, on classes training never saw; also retrieval recall both ways "
             "and the kNN and linear probe of the image encoder. Since the captions name the very classes the test "
             "asks for, zero-shot accuracy here is in effect a linear classifier whose weights are the text "
             "tower's embeddings of the names, and the held-out classes, which only a pretrained text tower can "
             "name, are the real test of learning from language. The similarity figure is the paper's picture of "
             "zero-shot classification and the retrieval figure shows each prompt's nearest test images: look for "
             "each image's highest similarity on its own class's prompt, and for which classes get confused.")
    captions = {
        "similarity": "Cosine similarity of one test image per class (columns) and each class's prompt (rows), the "
                      "paper's picture of zero-shot classification: each image goes to its most similar prompt, so "
                      "the largest value of each column should sit on the diagonal (* marks a class never seen in "
                      "training).",
        "retrieval": "Text-to-image retrieval: for each class prompt (a row), its six most similar test images, "
                     "framed green when of the prompt's class and red otherwise (* marks a class never seen in "
                     "training).",
    }
    commands = ("zero-shot",)

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
        self.caption_texts = [[t.format(n) for t in cfg.templates] for n in self.names]   # [class][template]
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
            from ..nets.pretrained import from_pretrained, resolve_model

            net, tok = from_pretrained(resolve_model(cfg.text), mlm=False)
            limit = min(cfg.text_model.max_tokens, net.hf.max_tokens or net.cfg.block_size)
            return TextTower(net, tok, cfg.embed_dim, limit, locked=True)
        tok = self.caption_tokenizer()
        return TextTower(cfg.text_model.transformer(tok.vocab_size), tok, cfg.embed_dim, cfg.text_model.max_tokens,
                         locked=False)

    def caption_tokenizer(self):
        """The words and characters of the training captions (the held-out classes' names and templates are not in
        them), a WordPiece vocabulary; saved in the run folder, as every text recipe's tokeniser."""
        text = "\n".join(self.caption_texts[c][t] for c in self.seen for t in range(len(self.cfg.templates)))
        make = lambda: word_tokenizer(text, BERT_SPECIALS, name="the training captions")   # noqa: E731
        return kept_tokenizer(getattr(self.ctx, "run_dir", None), make, self.ctx.is_main)

    # -- training ----------------------------------------------------------------------------------------------------
    def train_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        x, y = batch                                                         # (N, C, H, W), (N,) class indices
        self.trained_to = step + 1
        if self.augment:
            x, _ = self.augment(x, y, len(self.names))
        t = torch.randint(len(self.cfg.templates), (len(y),))                # a template for each image
        texts = [self.caption_texts[c][k] for c, k in zip(y.tolist(), t.tolist())]
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
        """(W_i f(x) of every image (N, D) on the CPU, labels (N,)); the towers are left in the mode they were in."""
        towers = nn.Sequential(self.model.image, self.model.image_proj).train(self.model.image.training)
        return extract(towers, batches, self.ctx)

    @torch.no_grad()
    def zero_shot(self, images: torch.Tensor, labels: list[str], templates: list[str] | None = None) -> torch.Tensor:
        """Probabilities (N, K) of images (N, C, H, W) in [0, 1] over ``labels``, each label's embedding the prompt
        ensemble of ``templates`` (default: the training templates), at the learned scale."""
        self.model.eval()
        classes = class_embeddings(self.encode_text, labels, templates or self.cfg.templates)
        emb = self.model.encode_image(images.to(self.ctx.device)).float()
        return (float(self.model.logit_scale()) * F.normalize(emb, dim=1) @ classes.T).softmax(-1).cpu()

    def unreadable(self, labels: list[str]) -> dict[str, list[str]]:
        """The labels whose words the text tower cannot read (``{label: [unknown words]}``): their prompts would be
        the embedding of unknown tokens, the same for every such label."""
        out = {}
        for label in labels:
            unknown = self.model.text.unknown_words(label)
            if unknown:
                out[label] = unknown
        return out

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
            scores, _, _ = evaluate_encoder(self.model.image, self.feature_loader.epoch(0),
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
        texts = [self.caption_texts[c][j] for c, j in zip(labels.tolist(), k)]
        t = F.normalize(self.encode_text(texts).cpu(), dim=1)                # (n, D)
        sim = e[:n] @ t.T                                                    # (n images, n captions)
        same = labels[:, None] == labels[None, :]                            # a caption names the image's class
        i2t, t2i = retrieval_recall(sim, same, (1, 5)), retrieval_recall(sim.T, same.T, (1, 5))
        return {"i2t_r1": i2t[1], "i2t_r5": i2t[5], "t2i_r1": t2i[1], "t2i_r5": t2i[5]}

    # -- figures -----------------------------------------------------------------------------------------------------
    def figures(self):
        yield from report_figures(self)


__all__ = ["CLIP", "CLIPConfig"]
