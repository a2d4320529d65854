"""The ``triplet`` recipe: FaceNet's embedding, where the same person's faces are close and different people's far
(Schroff, Kalenichenko & Philbin 2015).

    paradigms run triplet --dataset olivetti-faces [--set mining=batch-hard]

The network maps a face to a point f(x) on the unit sphere; each batch holds P people x K faces (``train.batch_size``
= P K, ``images_per_person`` = K), its triplets are mined online (:func:`~paradigms.contrastive.losses.mine_triplets`:
batch-all, batch-hard or semi-hard) and pulled into order by a margin (:func:`~paradigms.contrastive.losses.
triplet_loss`),

    L = [ ||f(a) - f(p)||^2 - ||f(a) - f(n)||^2 + alpha ]_+            (the lecture: ||F(Jack1) - F(Jack2)|| small,
                                                                                   ||F(Jack1) - F(Bob1)|| large)

The identities (people, or the classes of another dataset) are split before training: ``test_identities`` people
are never seen, ``val_identities`` others choose the verification threshold, the rest train; every image of a person
goes with the person. Evaluation, on the unseen people: verification (is this pair the same person? the squared
distance under the threshold that maximises balanced accuracy on the validation people; balanced accuracy, the mean
of the accuracies on same-person and different-person pairs) and recall@1 (is a face's nearest other face the same
person's?; :mod:`.verification`). The same measures, with the same threshold rule, for raw pixels and for PCA ("eigenfaces", Turk &
Pentland 1991, fitted on the training people) and for the network before training, in the same report.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from torch import nn

from .. import augment, optim
from ..data import unit
from ..data.subset import ImageRecipeConfig
from ..errors import UserError
from ..nets import NetConfig, build_net, card, to_device
from ..optim import OptimConfig
from ..recipes import ImageRecipe, register
from .losses import MINING, mine_triplets, triplet_loss
from .triplet_figures import distance_table_figure, verification_figure
from .verification import balanced_accuracy, best_threshold, pair_distances, recall_at_1


class TripletConfig(ImageRecipeConfig):
    recipe: str = "triplet"
    dataset: str = "olivetti-faces"
    model: NetConfig = Field(NetConfig(name="resnet", width=16), description="the network; its head outputs the "
                             "embedding")
    embedding_dim: int = Field(64, ge=2, le=4096, description="the embedding's width (FaceNet: 128)")
    margin: float = Field(0.2, gt=0, le=4, description="alpha: how much farther a negative must be (FaceNet: 0.2)")
    mining: str = Field("semi-hard", description=f"which triplets of a batch train: {' | '.join(MINING)}")
    images_per_person: int = Field(4, description="K: images of each person in a batch (>= 2); the batch holds "
                                   "train.batch_size / K people")
    test_identities: int = Field(10, ge=2, description="people (classes) never seen in training, for the test")
    val_identities: int = Field(5, ge=2, description="people that choose the verification threshold")
    pca_components: int = Field(50, ge=1, description="the eigenfaces baseline's components")
    eval_n: int = Field(1000, ge=2, description="at most this many images of the test people, and of the validation "
                        "people, are measured (every pair of them)")
    augment: list[str | dict[str, dict | None]] = Field([], description="train-time augmentation (paradigms.augment)")
    optim: OptimConfig = OptimConfig(name="adam", lr=1e-3, weight_decay=1e-4, schedule="cosine")

    @field_validator("mining")
    @classmethod
    def _mining(cls, v: str) -> str:
        if v not in MINING:
            raise ValueError(f"choose one of {', '.join(MINING)}")
        return v

    @field_validator("images_per_person")
    @classmethod
    def _k(cls, v: int) -> int:
        if v < 2:
            raise ValueError("triplet mining needs at least two images of a person in a batch (an anchor and its "
                             "positive): set images_per_person >= 2")
        return v

    @model_validator(mode="after")
    def _batch(self):
        b, k = self.train.batch_size, self.images_per_person
        if b % k or b // k < 2:
            raise ValueError(f"train.batch_size={b} must hold at least two people of images_per_person={k} images "
                             f"each (a multiple of {k}, at least {2 * k}): a negative is another person")
        return self


@register
class Triplet(ImageRecipe):
    name = "triplet"
    family = "contrastive"
    measures = "verification accuracy and recall@1 on people never seen in training"
    encoder = "model"
    network = "model"
    Config = TripletConfig
    about = ("Metric learning with FaceNet's triplet loss (Schroff, Kalenichenko & Philbin 2015, \"FaceNet: a "
             "unified embedding for face recognition and clustering\"): a network maps each face to a point on the "
             "unit sphere so that two faces of one person end up closer than faces of two people, by a margin, "
             "L = [||f(a) - f(p)||^2 - ||f(a) - f(n)||^2 + alpha]_+ over triplets of an anchor, a positive (the same "
             "person) and a negative (another). Each batch holds P people with K faces each and its triplets are "
             "mined online (batch-all, batch-hard or semi-hard); with a dataset other than faces, its classes play "
             "the people. The people are split before training, so the test measures the embedding on people the "
             "network has never seen: verification (same person or not, at the distance threshold that separate "
             "validation people choose) and recall@1, beside raw pixels, PCA eigenfaces (Turk & Pentland 1991, "
             "\"Eigenfaces for recognition\") and the same network untrained. The distance table and the "
             "histograms compare before and after training: look for same-person distances shrinking and "
             "different-person distances growing, until one threshold separates them.")
    captions = {
        "distances": "Squared distances between the embeddings of two faces each of three people never seen in "
                     "training, before and after training (0: the same point, 4: opposite points; same-person "
                     "pairs in bold): after training the bold cells should be small and the others large.",
        "verification": "Histograms of the squared distances of same-person and different-person pairs among the "
                        "unseen people, before and after training, with the threshold chosen on the validation "
                        "people (dashed): the less the two histograms overlap, the better the verification.",
        "embedding": "t-SNE of the embeddings of the unseen people's faces, one colour per person: tight, separate "
                     "groups mean the network learned what tells people apart, not just the people it trained on.",
    }
    commands = ()

    @classmethod
    def preset(cls, name: str, dataset: str) -> dict:
        if dataset in ("olivetti-faces", "olivetti", "orl", "orl-faces"):
            if name == "full":
                return {"model": {"width": 64}, "embedding_dim": 128, "augment": ["flip"],
                        "train": {"epochs": 400, "batch_size": 40}}
            return {"augment": ["flip"], "train": {"epochs": 60, "batch_size": 40, "eval_every": 20}}
        # another labelled dataset: its classes are the identities (3 unseen, 2 for the threshold, the rest train)
        return {"test_identities": 3, "val_identities": 2, "model": {"name": "lenet5", "width": 2},
                "images_per_person": 16,
                "train": {"epochs": 2 if name == "quick" else 20, "batch_size": 64}}

    def __init__(self, cfg: TripletConfig, ctx):
        super().__init__(cfg, ctx)
        x, y, tx, ty = self.load_images()
        data = self.data
        if not data.labelled:
            raise UserError(f"dataset {cfg.dataset} has no labels (its images are not in class sub-folders): triplet "
                            "mining needs to know who is who; put each person's images in a sub-folder, or learn "
                            "without labels with simclr or moco")
        if x is None:
            raise UserError(f"dataset {cfg.dataset} is streamed from disk; triplet's P x K batches need it in memory "
                            "(raise memory_mb above its size)")
        x, y = torch.cat([x, tx]), torch.cat([y, ty])   # every image of a person goes with the person
        k = len(self.classes)
        if cfg.test_identities + cfg.val_identities + 2 > k:
            raise UserError(f"{cfg.dataset} has {k} identities: test_identities={cfg.test_identities} + "
                            f"val_identities={cfg.val_identities} leave fewer than 2 to train on (lower them)")
        order = torch.randperm(k, generator=torch.Generator().manual_seed(cfg.seed))
        self.test_ids = order[:cfg.test_identities].sort().values
        self.val_ids = order[cfg.test_identities:cfg.test_identities + cfg.val_identities].sort().values
        self.train_ids = order[cfg.test_identities + cfg.val_identities:].sort().values
        parts = {}
        for part, ids in (("train", self.train_ids), ("val", self.val_ids), ("test", self.test_ids)):
            sel = torch.isin(y, ids)
            parts[part] = (x[sel], y[sel])
        for part in ("val", "test"):   # at most eval_n images each, drawn with the seed (all of the faces)
            px, py = parts[part]
            pick = torch.randperm(len(py), generator=torch.Generator().manual_seed(cfg.seed))[:cfg.eval_n].sort().values
            parts[part] = (px[pick], py[pick])
        self.parts = parts
        self.people = max(1, cfg.train.batch_size // cfg.images_per_person // ctx.world)   # P per rank
        if self.people > len(self.train_ids):
            raise UserError(f"train.batch_size={cfg.train.batch_size} asks for {self.people} people per batch but "
                            f"only {len(self.train_ids)} train (lower the batch or the held-out identities)")
        counts = torch.bincount(parts["train"][1], minlength=k)[self.train_ids]
        if int(counts.min()) < cfg.images_per_person:
            who = self.classes[int(self.train_ids[counts.argmin()])]
            raise UserError(f"identity {who} has {int(counts.min())} images, fewer than images_per_person="
                            f"{cfg.images_per_person} (lower it)")
        self.by_person = [torch.nonzero(parts["train"][1] == i).flatten() for i in self.train_ids.tolist()]
        self.net = to_device(build_net(cfg.model, self.in_shape, cfg.embedding_dim, data.mean, data.std), ctx.device)
        self.untrained = copy.deepcopy(self.net)   # the network before training (the figure's "before")
        self.modules = {"model": self.net}
        self.train_net = ctx.distribute(self.net)
        self.optimizers = {"opt": optim.build_optimizer(self.net.parameters(), cfg.optim)}
        self.augment = augment.build(cfg.augment, cfg.dataset, data.channels, mean=data.mean)
        if self.augment.mixes:
            raise UserError("augment: a mix blends two people into one image; drop it from augment")
        self.total_steps = cfg.train.epochs * self.steps_per_epoch
        self._baselines: dict[str, float] | None = None

    def network_card(self) -> dict:
        stats = self.net.standardize
        return {**card(self.cfg.model, self.in_shape, [], stats.mean.flatten().tolist(), stats.std.flatten().tolist()),
                "kind": "embedding", "classes": None, "features": self.cfg.embedding_dim}

    @classmethod
    def build_network(cls, card: dict) -> nn.Module:
        return build_net(NetConfig(**card["net"]), tuple(card["input_shape"]), card["features"], card["mean"],
                         card["std"])

    # -- P x K batches ---------------------------------------------------------------------------------------------
    @property
    def steps_per_epoch(self) -> int:
        return max(1, len(self.parts["train"][1]) // (self.people * self.cfg.images_per_person * self.ctx.world))

    def batches(self, epoch: int, start: int = 0):
        """P people drawn without replacement, K of each one's images: from (seed, epoch, step, rank) alone."""
        cfg, ctx = self.cfg, self.ctx
        x, y = self.parts["train"]
        for i in range(start, self.steps_per_epoch):
            g = torch.Generator().manual_seed(((cfg.seed * 1_000_003 + epoch) * 100_003 + i) * ctx.world + ctx.rank)
            people = torch.randperm(len(self.by_person), generator=g)[:self.people]
            idx = torch.cat([self.by_person[p][torch.randperm(len(self.by_person[p]), generator=g)
                                               [:cfg.images_per_person]] for p in people.tolist()])
            yield unit(x[idx].to(ctx.device)), y[idx].to(ctx.device)

    def train_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        x, y = batch
        cfg = self.cfg
        if self.augment:
            x = self.augment(x)
        opt = self.optimizers["opt"]
        lr = optim.set_lr(opt, optim.lr_at(step, self.total_steps, cfg.optim))
        self.train_net.train()
        with self.ctx.autocast():
            emb = self.train_net(x).float()                                  # (P K, D)
        a, p, n = mine_triplets(emb, y, cfg.mining, cfg.margin)             # index tensors (T,)
        loss = triplet_loss(emb[a], emb[p], emb[n], cfg.margin, active_only=cfg.mining == "batch-all")
        optim.step(opt, loss, cfg.train.grad_clip)
        with torch.no_grad():
            e = F.normalize(emb, dim=1)
            d_ap, d_an = (e[a] - e[p]).pow(2).sum(1), (e[a] - e[n]).pow(2).sum(1)
            active = (d_ap - d_an + cfg.margin > 0).float().mean()
        return {"loss": loss.detach(), "active": active, "triplets": torch.tensor(float(len(a))), "lr": lr}

    # -- evaluation ------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings of uint8 images, in eval mode."""
        was = net.training
        net.eval()
        out = []
        for i in range(0, len(x), 256):
            with self.ctx.autocast():
                out.append(F.normalize(net(unit(x[i:i + 256].to(self.ctx.device))).float(), dim=1).cpu())
        net.train(was)
        return torch.cat(out)

    def threshold(self, embed) -> float:
        """The verification threshold of ``embed(uint8 images) -> (N, D)``: the squared distance that best separates
        the validation people's same-person pairs from their different-person pairs (the best balanced accuracy,
        :func:`~.verification.best_threshold`); a pair is "the same person" when ||f(x1) - f(x2)||^2 <= it. Computed
        from the weights alone, so any run's threshold can be had again (the lab's triplet panel)."""
        vx, vy = self.parts["val"]
        return best_threshold(*pair_distances(embed(vx), vy))

    def scores(self, embed) -> dict[str, float]:
        """``embed(uint8 images) -> (N, D)`` measured on the unseen people, the threshold from the validation ones."""
        tx, ty = self.parts["test"]
        threshold = self.threshold(embed)
        dist, same = pair_distances(embed(tx), ty)
        return {"verify_acc": balanced_accuracy(dist, same, threshold), "recall1": recall_at_1(embed(tx), ty),
                "threshold": threshold}

    def baselines(self) -> dict[str, float]:
        """Raw pixels and PCA (fitted on the training people), the same protocol; computed once."""
        if self._baselines is None:
            from sklearn.decomposition import PCA

            def pixels(x):
                return F.normalize(unit(x).flatten(1), dim=1)

            train = unit(self.parts["train"][0]).flatten(1).numpy()
            pca = PCA(min(self.cfg.pca_components, *train.shape), random_state=self.cfg.seed).fit(train)

            def eigen(x):
                return F.normalize(torch.from_numpy(pca.transform(unit(x).flatten(1).numpy())).float(), dim=1)

            self._baselines = {f"{name}_{k}": v for name, fn in (("pixels", pixels), ("pca", eigen))
                               for k, v in self.scores(fn).items() if k != "threshold"}
        return self._baselines

    def evaluate(self) -> dict[str, float]:
        out = {k: v for k, v in self.scores(lambda x: self.embed(self.net, x)).items()}
        out.update(self.baselines())
        out.update({f"untrained_{k}": v for k, v in self.scores(lambda x: self.embed(self.untrained, x)).items()
                    if k != "threshold"})
        return {f"test/{k}": v for k, v in out.items()}

    def figures(self):
        from ..evaluate import embedding_figure

        tx, ty = self.parts["test"]
        yield "distances", distance_table_figure(self, tx, ty)
        yield "verification", verification_figure(self)
        names = [self.classes[int(i)] for i in self.test_ids]
        relabel = torch.full((len(self.classes),), -1, dtype=torch.long)
        relabel[self.test_ids] = torch.arange(len(self.test_ids))
        yield "embedding", embedding_figure(self.embed(self.net, tx), relabel[ty], names,
                                            "t-SNE of the unseen people's embeddings", seed=self.cfg.seed)


__all__ = ["Triplet", "TripletConfig"]
