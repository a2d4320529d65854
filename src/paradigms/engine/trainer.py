"""The training loop every recipe runs in.

    for epoch, batch:   metrics = recipe.train_step(batch, step)      # the recipe's whole idea
                        every log_every steps: check loss is finite, reduce across ranks, log
                        every checkpoint_every_s seconds: checkpoint (atomic)
    each eval_every epochs: recipe.evaluate() -> log; recipe.end_epoch() may stop the run early (why is
                        logged and noted in the report); checkpoint when due and after the last epoch
    at the end: final evaluation, figures, report.html

A run killed at any moment and resumed with ``resume=True`` restarts from its last checkpoint
(weights, optimisers, RNG, position in the epoch) and ends with the metrics of a run that never
stopped.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from .. import config as configlib
from ..errors import Diverged, NonFiniteLoss, UserError, make_folder
from . import checkpoint as ckpt
from . import runstate
from .context import Context, rank_step_seed, seed_everything
from .report import draw_figures, write_report
from .runlog import RunLog, is_rate


def default_run_dir(cfg) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.recipe}-{cfg.dataset.replace(':', '_').replace('/', '_')}-{stamp}"


RUN_FOLDERS = ("checkpoints", "figures", "notes", "tb")
"""The sub-folders the engine, the report and the run log write in a run folder."""
RUN_FILES = ("config.yaml", "model.json", "metrics.jsonl", "final.json", "report.html")
"""The files the engine and the report write at the top of a run folder."""


def make_run_folder(run_dir: Path) -> list[Path]:
    """Create ``run_dir`` (and its parents) and check the engine can write there: a writable folder, no file where
    a sub-folder goes (checkpoints/, figures/, notes/, tb/) and no folder where a file goes. Raises one
    :class:`UserError` that names the path and says why; returns the folders it created, deepest first."""
    run_dir = Path(run_dir)
    created = []
    for p in (run_dir, *run_dir.parents):
        try:
            if p.exists() or p.is_symlink():
                break
        except OSError:  # a path it cannot even look at: make_folder says why
            break
        created.append(p)
    make_folder(run_dir, "run folder")
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise UserError(f"run folder {run_dir} cannot be written to (permission denied or a read-only file "
                        "system); choose a folder you can write to with --out")
    for name in RUN_FOLDERS:
        if (run_dir / name).exists() and not (run_dir / name).is_dir():
            raise UserError(f"run folder {run_dir}: {run_dir / name} is a file, where the run keeps its {name}/ "
                            "folder; move the file away or choose another --out")
    for name in RUN_FILES:
        if (run_dir / name).is_dir():
            raise UserError(f"run folder {run_dir}: {run_dir / name} is a folder, where the run writes its {name}; "
                            "move the folder away or choose another --out")
    return created


def build(cfg, ctx: Context):
    """Seed, then construct the recipe of ``cfg`` (data, networks, optimisers)."""
    from ..recipes import get

    seed_everything(cfg.seed)
    return get(cfg.recipe)(cfg, ctx)


def load_config(run_dir: Path):
    """The resolved config saved in a run folder, re-validated."""
    from ..recipes import get

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise UserError(f"{run_dir} is not a run folder: {path} is missing")
    data = configlib.load_yaml(path)
    if "recipe" not in data:
        raise UserError(f"{path} names no recipe")
    return configlib.validate(get(data["recipe"]).Config, data)


class Trainer:
    def __init__(self, cfg, run_dir: Path | None = None, resume: bool = False, progress: bool | None = None):
        if not resume:
            from ..recipes import get

            cfg = get(cfg.recipe).prepare(cfg)
        self.cfg = cfg
        self.ctx = Context.create(device=cfg.device, seed=cfg.seed, precision=cfg.train.precision,
                                  data_dir=cfg.data_dir)
        run_dir = Path(run_dir) if run_dir else default_run_dir(cfg)
        self.run_dir = Path(self.ctx.broadcast_object(str(run_dir)))
        self.ctx.run_dir = self.run_dir
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.resume = resume
        if progress is None:
            progress = os.environ.get("PARADIGMS_PROGRESS", "1") != "0"
        self.progress = progress and self.ctx.is_main
        if not resume and (self.ckpt_dir / ckpt.POINTER).exists():
            raise UserError(f"run folder {self.run_dir} already holds a run; continue it with "
                            f"`paradigms run --resume {self.run_dir}` or choose another --out")
        # the run folder first, so a path that cannot be one is said before the data is read; the main process
        # alone creates it, and every rank raises the same error when it cannot
        created, problem = [], None
        if self.ctx.is_main:
            try:
                created = make_run_folder(self.run_dir)
            except UserError as e:
                problem = str(e)
        problem = self.ctx.broadcast_object(problem)
        if problem:
            raise UserError(problem)
        try:
            self.recipe = build(cfg, self.ctx)
        except BaseException:  # bad data or settings: leave no empty run folder behind
            for folder in created:
                try:
                    folder.rmdir()
                except OSError:  # not empty (a recipe wrote there) or gone: keep it and what is above it
                    break
            raise
        self.stopped: str | None = None  # why the recipe stopped the run early (end_epoch), if it did

    # -- checkpoints ------------------------------------------------------------------------------
    def save(self, epoch: int, batch: int, step: int) -> None:
        if self.ctx.is_main:
            state = {"epoch": epoch, "batch": batch, "step": step, "rng": ckpt.rng_state(), "stopped": self.stopped,
                     "optimizers": {k: o.state_dict() for k, o in self.recipe.optimizers.items()},
                     "extra": self.recipe.extra_state()}
            ckpt.save(self.ckpt_dir, step, ckpt.flat_weights(self.recipe.modules), state,
                      keep=self.cfg.train.keep_checkpoints, protect=self.recipe.trouble_since())
        self.ctx.barrier()

    def restore(self) -> tuple[int, int, int]:
        weights, state, step = ckpt.load(self.ckpt_dir)
        ckpt.load_weights(self.recipe.modules, weights, str(self.ckpt_dir))
        for k, opt in self.recipe.optimizers.items():
            if k not in state["optimizers"]:
                raise ckpt.CheckpointError(f"checkpoint in {self.ckpt_dir} has no state for optimiser {k!r}")
            opt.load_state_dict(state["optimizers"][k])
        self.recipe.load_extra_state(state.get("extra", {}))
        self.stopped = state.get("stopped")
        ckpt.set_rng_state(state["rng"])
        return state["epoch"], state["batch"], step

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self) -> dict:
        """Train to the end (or resume and train to the end); returns the final metrics. ``state.json`` says the run
        is running, then how it ended (:mod:`.runstate`)."""
        if self.ctx.is_main:
            runstate.started(self.run_dir, resumed=self.resume)
        try:
            final = self._fit()
        except KeyboardInterrupt:
            if self.ctx.is_main:
                runstate.ended(self.run_dir, "interrupted")
            raise
        except BaseException as e:
            if self.ctx.is_main:
                runstate.ended(self.run_dir, "failed", str(e) or type(e).__name__)
            raise
        if self.ctx.is_main:
            runstate.ended(self.run_dir, "finished")
        return final

    def _fit(self) -> dict:
        cfg, ctx, recipe = self.cfg, self.ctx, self.recipe
        epoch, start_batch, step = self.restore() if self.resume else (0, 0, 0)
        if ctx.is_main:  # the run folder is made (and checked) by __init__
            make_folder(self.run_dir, "run folder")
            (self.run_dir / "config.yaml").write_text(configlib.to_yaml(cfg))
        ctx.barrier()
        if not self.resume:
            recipe.start()
        if ctx.is_main and recipe.network is not None:  # what paradigms.load(RUN_DIR) builds, without the dataset
            card = {"recipe": cfg.recipe, "module": recipe.network, **recipe.network_card()}
            ckpt.atomic_write_text(self.run_dir / "model.json", json.dumps(card, indent=1))
        log = RunLog(self.run_dir, enabled=ctx.is_main, resume_step=step if self.resume else None)
        per_epoch = recipe.steps_per_epoch
        total = cfg.train.epochs * per_epoch
        bar = tqdm(total=total, initial=step, disable=not self.progress, unit="step", dynamic_ncols=True,
                   desc=f"{cfg.recipe}:{cfg.dataset}", file=sys.stderr)
        pending: list[tuple[int, dict]] = []
        last_ckpt, t0 = time.monotonic(), time.monotonic()
        evaluated_at, eval_s, first_step = None, 0.0, step
        try:
            while epoch < cfg.train.epochs and not self.stopped:
                for i, batch in enumerate(recipe.batches(epoch, start_batch), start=start_batch):
                    if ctx.world > 1:  # each rank its own random draws (one process keeps its seeded stream)
                        torch.manual_seed(rank_step_seed(cfg.seed, ctx.rank, step))
                    metrics = recipe.train_step(batch, step)
                    step += 1
                    pending.append((step, metrics))
                    bar.update(1)
                    if len(pending) >= cfg.train.log_every:
                        self.flush(pending, log, bar, epoch)
                        pending = []
                        # the last batch of an epoch is saved by the epoch-end checkpoint, after its evaluation
                        if i + 1 < per_epoch and self.checkpoint_due(last_ckpt):
                            self.save(epoch, i + 1, step)
                            last_ckpt = time.monotonic()
                self.flush(pending, log, bar, epoch)
                pending = []
                epoch, start_batch = epoch + 1, 0
                if cfg.train.eval_every and epoch % cfg.train.eval_every == 0:
                    t_eval = time.monotonic()
                    log.write(step, "eval", recipe.evaluate(), epoch=epoch, time_s=round(t_eval - t0, 3))
                    evaluated_at = step
                    eval_s += time.monotonic() - t_eval
                self.stopped = recipe.end_epoch(epoch)
                if self.stopped:
                    self.note_stop(log, step, epoch, bar)
                    evaluated_at = None  # the recipe may have changed the weights (kept an earlier epoch's)
                # an epoch boundary is the cheapest place to save, but tiny epochs (a few steps) would fsync
                # every second: save when due, and always after the last epoch
                if epoch == cfg.train.epochs or self.stopped or self.checkpoint_due(last_ckpt):
                    self.save(epoch, 0, step)
                    last_ckpt = time.monotonic()
        except Diverged as e:  # the recipe saw training fail since e.since: keep the checkpoint from before
            kept = ckpt.rollback(self.ckpt_dir, e.since) if ctx.is_main else None
            where = (f"the last good checkpoint (step {kept}) is kept in {self.ckpt_dir}, the later ones deleted"
                     if kept is not None else f"no checkpoint from before step {e.since} is left in {self.ckpt_dir}")
            raise Diverged(f"{e}; stopped: {where}", e.since) from None
        finally:
            bar.close()
        # wall time of the training loop itself (checkpoints and logging included, evaluation not)
        self.stats = {"steps": step - first_step, "train_s": time.monotonic() - t0 - eval_s}
        final = recipe.evaluate()
        if ctx.is_main:
            elapsed = time.monotonic() - t0
            if evaluated_at != step:
                log.write(step, "eval", final, epoch=epoch, time_s=round(elapsed, 3))
            log.write(step, "final", {**final, "time_s": elapsed}, epoch=epoch)
            log.close()
            ckpt.atomic_write_text(self.run_dir / "final.json", json.dumps({**final, "step": step}, indent=1))
            if cfg.train.figures:
                draw_figures(recipe, self.run_dir)
            write_report(self.run_dir)
        ctx.barrier()
        return final

    def note_stop(self, log: RunLog, step: int, epoch: int, bar) -> None:
        """Say why the recipe stopped the run: on stderr, in the log and as a note in the report."""
        log.write(step, "stopped", {}, epoch=epoch, reason=self.stopped)
        if self.ctx.is_main:
            bar.write(f"stopped early: {self.stopped}", file=sys.stderr)
            make_folder(self.run_dir / "notes", "notes folder")
            ckpt.atomic_write_text(self.run_dir / "notes" / "stopped.txt", self.stopped + "\n")

    def checkpoint_due(self, last: float) -> bool:
        """Rank 0's clock decides, so every rank takes the same branch (DDP collectives must match)."""
        due = torch.tensor(float(time.monotonic() - last > self.cfg.train.checkpoint_every_s and self.ctx.is_main))
        return bool(self.ctx.all_reduce(due) > 0)

    def flush(self, pending: list[tuple[int, dict]], log: RunLog, bar, epoch: int) -> None:
        """Check the losses since the last flush, average each metric over the steps that reported it,
        reduce across ranks, log.

        A recipe may report different metrics at different steps (a GAN's generator every k steps):
        each key is averaged over the steps that have it. Every metric whose name starts with ``loss``
        must be finite. ``lr`` (and ``lr_*``) are the learning rates the recipe reports: the last is logged.
        """
        if not pending:
            return
        keys = sorted({k for _, m in pending for k in m})
        steps = {k: [s for s, m in pending if k in m] for k in keys}
        values = {k: torch.stack([torch.as_tensor(m[k], dtype=torch.float32).detach().reshape(())
                                  for _, m in pending if k in m]).cpu() for k in keys}
        bad = [s for k in keys if k.startswith("loss") for s, v in zip(steps[k], values[k].tolist())
               if not math.isfinite(v)]
        last = [is_rate(k) for k in keys]
        sums = torch.stack([values[k][-1] if is_last else values[k].nan_to_num().sum() for k, is_last in zip(keys, last)])
        counts = torch.tensor([1.0 if is_last else float(len(values[k])) for k, is_last in zip(keys, last)])
        # one collective: per-key sums and counts, and whether any rank saw a bad loss (every rank stops together)
        reduced = self.ctx.all_reduce(torch.cat([sums, counts, torch.tensor([float(bool(bad))])]))
        if reduced[-1] > 0:
            where = f"at step {min(bad)}" if bad else f"on another rank, at or before step {pending[-1][0]}"
            lr = getattr(getattr(self.cfg, "optim", None), "lr", None)
            hint = f"lower the learning rate (optim.lr={lr}) and retry" if lr is not None else "lower the learning rate"
            raise NonFiniteLoss(f"non-finite loss {where}; stopped. The last good checkpoint is kept in "
                                f"{self.ckpt_dir}; {hint}")
        n = len(keys)
        out = {k: float(reduced[i] / reduced[n + i]) for i, k in enumerate(keys)}
        log.write(pending[-1][0], "train", out, epoch=epoch)
        bar.set_postfix({k: f"{v:.4g}" for (k, v), is_last in zip(out.items(), last) if not is_last}, refresh=False)


def load_trained(run_dir: Path, device: str | None = None, **changes):
    """Rebuild a run's recipe from its config.yaml and load its latest weights; ``changes``: config fields that do
    not change the network (where the data is, how much of it an evaluation reads)."""
    cfg = load_config(run_dir)
    if device:
        changes["device"] = device
    if changes:
        cfg = cfg.model_copy(update=changes)
    ctx = Context.create(device=cfg.device, seed=cfg.seed, precision=cfg.train.precision, data_dir=cfg.data_dir)
    ctx.run_dir = Path(run_dir)
    recipe = build(cfg, ctx)
    weights, _, _ = ckpt.load(Path(run_dir) / "checkpoints", weights_only=True)
    ckpt.load_weights(recipe.modules, weights, str(Path(run_dir) / "checkpoints"))
    return recipe


def evaluate_run(run_dir: Path, device: str | None = None) -> dict:
    return load_trained(run_dir, device).evaluate()


def report_run(run_dir: Path) -> Path:
    """Redraw a run's figures from its latest checkpoint (weights, and what the recipe keeps beside them: a GAN's
    samples after every epoch) and rewrite report.html."""
    recipe = load_trained(run_dir)
    _, state, _ = ckpt.load(Path(run_dir) / "checkpoints")
    recipe.load_extra_state((state or {}).get("extra", {}))
    draw_figures(recipe, Path(run_dir))
    return write_report(Path(run_dir))
