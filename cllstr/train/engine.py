"""The training loop: AdamW + OneCycle + grad clipping, autocast, channels_last, optional ``torch.compile``,
periodic per-language validation, best checkpoint by mean 1-NED, exact resume, JSONL/CSV logs and progress.

:class:`Trainer` works on any loader yielding batches with ``.images`` ``(B, C, H, W)``, ``.labels`` and
``.scripts`` (:class:`cllstr.data.loading.batch.Batch`) and any ``{language: loader}`` for validation; :func:`train`
builds everything from a :class:`~cllstr.train.config.TrainConfig` with the real data layer.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cllstr.checkpoint import load_checkpoint, save_checkpoint
from cllstr.device import autocast, configure_threads, resolve_amp_dtype, resolve_device
from cllstr.interrupt import StopRequest
from cllstr.models import count_parameters, create_model, model_info
from cllstr.scoring.evaluate import EvalReport, evaluate_loaders
from cllstr.scoring.script_id import evaluate_script_id, has_script_head
from cllstr.train.cascade import freeze_bn_stats, init_from_checkpoint
from cllstr.train.config import TrainConfig, config_to_dict
from cllstr.train.data_stream import BatchStream
from cllstr.train.distributed import DistContext, convert_sync_batchnorm, init_distributed
from cllstr.train.grouping import grouping_string, model_spec
from cllstr.train.grouping_plot import write_ptm
from cllstr.train.monitor import RunMonitor
from cllstr.train.objective import make_objective
from cllstr.train.rng import capture_rng, restore_rng

__all__ = ["Trainer", "TrainingInterrupted", "train", "seed_everything", "unwrap"]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class TrainingInterrupted(Exception):
    """Ctrl-C stopped :meth:`Trainer.fit`; ``checkpoint`` (``last.pt``) holds the state at ``iteration``."""

    def __init__(self, iteration: int, checkpoint: Path) -> None:
        super().__init__(f"stopped at iteration {iteration}; the run was saved to {checkpoint}")
        self.iteration = iteration
        self.checkpoint = checkpoint


class Trainer:
    """One training run.

    Args:
        cfg: The run configuration (``out_dir`` receives ``last.pt``, ``best.pt``, logs).
        charset: Token table (class 0 = blank); stored in every checkpoint.
        train_loader: Iterable of batches (re-iterated every epoch).
        val_loaders: Language name to a loader of validation batches (may be empty).
        quiet: Print nothing.
    """

    def __init__(self, cfg: TrainConfig, charset: Any, train_loader: Any, val_loaders: dict[str, Any] | None = None,
                 quiet: bool = False, loader_name: str | None = None, dist: DistContext | None = None) -> None:
        self.cfg = cfg
        self.dist = dist or DistContext()
        self.loader_name = loader_name
        self.charset = charset
        self.val_loaders = val_loaders or {}
        self.out_dir = Path(cfg.out_dir)
        self.device = resolve_device(cfg.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        if self.device.type == "cpu":
            configure_threads(cfg.threads)
        self.amp_dtype = resolve_amp_dtype(cfg.precision, self.device)
        seed_everything(cfg.seed)
        # The model is built for the data's input (model_kwargs still win); --heads / --grouping turn it into the
        # backbone of a grouped one, which passes the input keywords on to it.
        data = cfg.data
        input_kwargs = {} if cfg.model == "grouped" else model_info(cfg.model).input_kwargs(
            data.img_h, data.img_w, 3 if data.rgb else 1)
        self.model_name, self.model_kwargs = model_spec(cfg.model, {**input_kwargs, **cfg.model_kwargs}, cfg.grouping)
        self.model = create_model(self.model_name, charset.num_classes, **self.model_kwargs).to(self.device)
        self.cascade = None
        if cfg.init_from:
            self.cascade = init_from_checkpoint(self.model, list(charset.tokens), cfg.init_from, freeze=cfg.freeze)
        elif cfg.freeze:
            raise ValueError("freeze=True needs init_from (a checkpoint whose weights are frozen)")
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.dist.enabled and cfg.sync_bn:
            convert_sync_batchnorm(self.model)
        params = [p for p in self.model.parameters() if p.requires_grad]
        o = cfg.optim
        self.optimizer = torch.optim.AdamW(params, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
        self.scheduler = self._make_scheduler(cfg.iterations)
        self.schedule_note: str | None = None
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype is torch.float16)
        # DDP (one process per rank, launched by torchrun) wraps the forward pass; self.model stays the plain module
        # that is saved, validated and exported. Its construction broadcasts rank 0's weights to every rank.
        wrapped: nn.Module = self.model
        if self.dist.enabled:
            wrapped = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=self.model_name == "grouped")
        self.forward = torch.compile(wrapped) if cfg.compile else wrapped
        self.stream = BatchStream(train_loader)
        self.criterion = make_objective(self.model, cfg.grouping)
        self.iteration = 0
        self.best_score = -math.inf
        self.unknown_chars = 0
        self.quiet = quiet
        self.history: list[dict[str, Any]] = []

    def _make_scheduler(self, total_steps: int) -> torch.optim.lr_scheduler.OneCycleLR:
        o = self.cfg.optim
        return torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=o.lr, total_steps=max(total_steps, 1), pct_start=o.pct_start,
            div_factor=o.div_factor, final_div_factor=o.final_div_factor, cycle_momentum=False)

    # -- checkpoints -------------------------------------------------------------------------------------------
    def state_dict(self, all_ranks: bool = False) -> dict[str, Any]:
        """Everything needed to continue the run exactly, plus what inference needs.

        Args:
            all_ranks: Also gather every rank's RNG state (a collective: every rank must call it).
        """
        extra = {"rng_ranks": self.dist.gather(capture_rng())} if all_ranks and self.dist.enabled else {}
        return {
            **extra,
            "model_name": self.model_name,
            "model_kwargs": dict(self.model_kwargs),
            "charset": {"tokens": list(self.charset.tokens), "mode": self.charset.mode},
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": capture_rng(),
            "data": self.stream.state_dict(),
            "iteration": self.iteration,
            "best_score": self.best_score,
            "infeasible": [self.criterion.infeasible, self.criterion.seen],
            "objective": self.criterion.state_dict(),
            "config": config_to_dict(self.cfg),
            "image": {"img_h": self.cfg.data.img_h, "img_w": self.cfg.data.img_w, "rgb": self.cfg.data.rgb,
                      "keep_ratio": self.cfg.data.keep_ratio},
        }

    def save(self, name: str, all_ranks: bool = False) -> Path:
        """Atomically write ``out_dir/name`` (rank 0 only; with ``all_ranks`` every rank must call it, as the RNG
        states of all ranks are gathered into it)."""
        state = self.state_dict(all_ranks)
        path = self.out_dir / name
        return save_checkpoint(state, path) if self.dist.is_main else path

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint written by :meth:`state_dict` (same model, charset and schedule)."""
        if state["model_name"] != self.model_name:
            raise ValueError(f"checkpoint model {state['model_name']!r} differs from config model {self.model_name!r}")
        if list(state["charset"]["tokens"]) != list(self.charset.tokens):
            raise ValueError("checkpoint charset differs from this run's charset; use init_from for a new charset")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.iteration = int(state["iteration"])
        saved_total = int(state["scheduler"].get("total_steps", self.cfg.iterations))
        if saved_total != max(self.cfg.iterations, 1):
            self._stretch_schedule(saved_total)
        self.best_score = float(state["best_score"])
        self.criterion.infeasible, self.criterion.seen = state.get("infeasible", [0, 0])
        self.criterion.load_state_dict(state.get("objective", {}))
        self.stream.load_state_dict(state["data"])
        # after the stream, whose fast-forward consumed random numbers; each rank its own state when the world is
        # the same (see cllstr.train.distributed)
        ranks = state.get("rng_ranks")
        same_world = ranks is not None and len(ranks) == self.dist.world_size
        restore_rng(ranks[self.dist.rank] if same_world else state["rng"])

    def _stretch_schedule(self, saved_total: int) -> None:
        """Resume with another ``iterations``: the OneCycle curve is recomputed for the new length and the run continues
        on it from the current iteration (the learning rate jumps to the new curve's value there)."""
        if self.cfg.iterations < self.iteration:
            raise ValueError(
                f"the checkpoint is at iteration {self.iteration}, past --iterations {self.cfg.iterations}; pass "
                f"--iterations {self.iteration} or more to continue it")
        self.scheduler = self._make_scheduler(self.cfg.iterations)
        with warnings.catch_warnings():  # stepping the schedule alone, to its position, is the point here
            warnings.filterwarnings("ignore", message=".*lr_scheduler.step.*before.*optimizer.step")
            for _ in range(self.iteration):
                self.scheduler.step()
        self.schedule_note = (
            f"resumed with --iterations {self.cfg.iterations} instead of {saved_total}: the OneCycle schedule was "
            f"recomputed for {self.cfg.iterations} iterations and continues at iteration {self.iteration} with "
            f"learning rate {self.optimizer.param_groups[0]['lr']:.3g}")

    # -- loop --------------------------------------------------------------------------------------------------
    def train_step(self, batch: Any) -> float:
        """One optimiser step on ``batch``; returns the loss."""
        enc = self.criterion.encode(self.charset, batch.labels, getattr(batch, "scripts", None))
        self.unknown_chars += enc.unknown
        images = batch.images.to(self.device, non_blocking=True)
        if self.cfg.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.amp_dtype):
            logits = self.criterion.run(self.forward, images, enc)
        loss = self.criterion.loss(logits, enc)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return float(loss.detach())

    def validate(self) -> EvalReport:
        """Per-language validation of the current weights (the validation loaders hold the first
        ``data.val_samples`` of each language; in a distributed run each rank scores its share and the sums are
        reduced, so every rank gets the single-process scores: a collective)."""
        return evaluate_loaders(self.model, self.charset, self.val_loaders, self.device, self.amp_dtype,
                                self.cfg.channels_last, max_samples=self._val_cap(), reducer=self.dist)

    def _val_cap(self) -> int | None:
        """The per-language cap the evaluation loop applies: none in a distributed run (its loaders are capped)."""
        return None if self.dist.enabled else self.cfg.data.val_samples

    def _on_validation(self, mon: RunMonitor) -> None:
        report = self.validate()
        score = report.macro["one_minus_ned"]
        improved = score > self.best_score
        if improved:
            self.best_score = score
        row = {"iteration": self.iteration, "mean_1ned": score, "mean_acc": report.macro["accuracy"],
               "best_1ned": self.best_score, "seconds": round(report.seconds, 2)}
        for lang, s in report.languages.items():
            row[f"{lang}_acc"] = s.accuracy
            row[f"{lang}_1ned"] = s.one_minus_ned
        script_id = None
        if has_script_head(self.model):
            script_id = evaluate_script_id(self.model, self.val_loaders, self.device, self.amp_dtype,
                                           self.cfg.channels_last, max_samples=self._val_cap(), reducer=self.dist)
            row["script_acc"] = script_id.accuracy
        mon.record("val", row)
        self.history.append(row)
        per_lang = " ".join(f"{k}:{100 * s.accuracy:.1f}" for k, s in report.languages.items())
        mon.info(f"  val @{self.iteration}: mean 1-NED {100 * score:.2f} acc {100 * report.macro['accuracy']:.2f} "
                 f"[{per_lang}]" + ("  *best*" if improved else ""))
        grouping = self.criterion.on_validation(self.iteration)
        if grouping is not None:  # P_TM of a grouped model, one JSON line per validation
            if script_id is not None:
                grouping["script_id"] = script_id.to_dict()
            if self.dist.is_main:
                with open(self.out_dir / "grouping.jsonl", "a", encoding="utf-8") as f:
                    f.write(json.dumps(grouping) + "\n")
            sid = f", script ID {100 * script_id.accuracy:.1f}%" if script_id is not None else ""
            mon.info(f"  grouping @{self.iteration}: {grouping['grouping']} ({grouping['changes']} changes){sid}")
        if improved:
            self.save("best.pt")

    def fit(self, stop_at: int | None = None) -> dict[str, Any]:
        """Train until ``cfg.iterations`` (or ``stop_at``, or the time budget), validating and checkpointing.

        Returns:
            Summary: iterations done, best mean 1-NED, images/s, infeasible-sample counts, seconds.
        """
        cfg = self.cfg
        mon = RunMonitor(self.out_dir, cfg.iterations, start=self.iteration, tensorboard=cfg.tensorboard,
                         quiet=self.quiet, write=self.dist.is_main)
        n_params = count_parameters(self.model)
        loader = f", loader {self.loader_name}" if self.loader_name else ""
        mon.info(f"{self.model_name}: {n_params / 1e6:.2f}M parameters, {self.charset.num_classes} classes, device "
                 f"{self.device}, precision {self.amp_dtype or 'fp32'}, threads {torch.get_num_threads()}{loader}")
        if self.schedule_note:
            mon.info(self.schedule_note)
        if self.cascade is not None:
            mon.info(self.cascade.summary())
        end = cfg.iterations if stop_at is None else min(stop_at, cfg.iterations)
        deadline = time.monotonic() + 60 * cfg.max_minutes if cfg.max_minutes else math.inf
        t0, images, loss_sum, loss_n, warned = time.perf_counter(), 0, 0.0, 0, 0
        saved_at = self.iteration
        had_last = (self.out_dir / "last.pt").is_file()  # read before any rank writes it: the same on every rank
        self.model.train()
        freeze_bn_stats(self.model)
        stop = StopRequest()
        try:
            while self.iteration < end and time.monotonic() < deadline:
                if stop.requested:
                    raise KeyboardInterrupt
                try:
                    batch = next(self.stream)
                except Exception:
                    if stop.requested:  # Ctrl-C also reached the loader's worker processes
                        raise KeyboardInterrupt from None
                    raise
                if len(batch.labels) == 0:
                    continue
                loss = self.train_step(batch)
                n = len(batch.labels)
                if self.dist.enabled:  # the global batch's mean loss and size
                    weighted, n_all = self.dist.all_sum([loss * n, float(n)])
                    loss, n = weighted / max(n_all, 1.0), int(n_all)
                self.iteration += 1
                images += n
                mon.count_images(n)
                loss_sum, loss_n = loss_sum + loss, loss_n + 1
                if self.iteration % cfg.log_interval == 0 or self.iteration == end:
                    lr = self.optimizer.param_groups[0]["lr"]
                    if self.criterion.infeasible > warned:
                        mon.warn(f"{self.criterion.infeasible}/{self.criterion.seen} samples so far are "
                                 f"{self.criterion.infeasible_note}")
                        warned = self.criterion.infeasible
                    stats = mon.progress(self.iteration, loss_sum / loss_n, lr)
                    mon.record("train", {"iteration": self.iteration, "loss": loss_sum / loss_n, "lr": lr,
                                         "img_per_s": round(stats["img_per_s"], 2), "epoch": self.stream.epoch,
                                         "infeasible": self.criterion.infeasible, "unknown_chars": self.unknown_chars})
                    loss_sum, loss_n = 0.0, 0
                if self.val_loaders and cfg.val_interval and (self.iteration % cfg.val_interval == 0
                                                              or self.iteration == end):
                    self._on_validation(mon)
                    self.model.train()
                    freeze_bn_stats(self.model)
                if cfg.save_interval and self.iteration % cfg.save_interval == 0:
                    self.save("last.pt", all_ranks=True)
                    saved_at = self.iteration
            if self.iteration != saved_at or not had_last:
                self.save("last.pt", all_ranks=True)  # a finished run that is resumed again is left as it is
            if self.final_grouping() is not None:
                mon.info(f"final grouping: {self.final_grouping()}")
                if self.dist.is_main:  # grouping_ptm.csv / .png from the run's grouping.jsonl
                    write_ptm(self.out_dir)
        except KeyboardInterrupt:
            # the state after the last finished step: a resume continues exactly (rank 0 writes it alone: the other
            # ranks may have stopped at another step)
            path = self.save("last.pt")
            raise TrainingInterrupted(self.iteration, path) from None
        finally:
            stop.close()
            mon.close()
        seconds = time.perf_counter() - t0
        return {"iterations": self.iteration, "best_mean_1ned": self.best_score if self.history else None,
                "img_per_s": images / seconds if seconds > 0 else 0.0, "seconds": seconds,
                "infeasible": self.criterion.infeasible, "seen": self.criterion.seen,
                **({"grouping": self.final_grouping()} if self.final_grouping() is not None else {})}

    def final_grouping(self) -> str | None:
        """The grouping of a grouped model now (``{A,K} {B,J} {C} {H} {L}``), None for a single-head one."""
        if not hasattr(self.model, "head_probs"):
            return None
        with torch.no_grad():
            return grouping_string(self.model.head_probs().detach().float().cpu())


def train(cfg: TrainConfig, resume: bool = False, quiet: bool = False) -> tuple[Trainer, dict[str, Any]]:
    """Build data, charset and trainer from ``cfg`` (real data layer) and run it.

    Args:
        cfg: The configuration.
        resume: Continue ``cfg.out_dir/last.pt`` exactly (its charset is reused).
        quiet: Print nothing.
    """
    from cllstr.data.loading.loader import describe_loader
    from cllstr.text.charset import Charset
    from cllstr.train.data import build_charset, build_eval_loaders, build_train_loader

    dist = init_distributed(cfg.device)
    if dist.enabled and cfg.threads is None:  # share the cores among the ranks of this node
        cfg = dataclasses.replace(cfg, threads=max(1, (os.cpu_count() or 1) // dist.local_world_size))
    last = Path(cfg.out_dir) / "last.pt"
    state = None
    if resume:
        state = load_checkpoint(last)
        charset = Charset(state["charset"]["tokens"], mode=state["charset"]["mode"])
    else:
        charset = build_charset(cfg.data)
    if dist.is_main:
        Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
        charset.save(Path(cfg.out_dir) / "charset.txt")
    loader = build_train_loader(cfg.data, charset, cfg.batch_size, cfg.seed, rank=dist.rank,
                                world_size=dist.world_size)
    # every rank validates its share of the first val_samples of each language (Trainer.validate reduces the sums)
    val = (build_eval_loaders(cfg.data, "validation", cfg.batch_size, max_samples=cfg.data.val_samples,
                              rank=dist.rank, world_size=dist.world_size) if cfg.val_interval else {})
    name = describe_loader(loader) + (f", {dist.world_size} ranks" if dist.enabled else "")
    trainer = Trainer(cfg, charset, loader, val, quiet=quiet, loader_name=name, dist=dist)
    if state is not None:
        trainer.load_state_dict(state)
    return trainer, trainer.fit()


def unwrap(model: nn.Module) -> nn.Module:
    """The module under a ``torch.compile`` wrapper."""
    return getattr(model, "_orig_mod", model)
