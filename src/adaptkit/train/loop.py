"""The one training loop behind `pretrain` and `finetune`.

Deterministic given the seed: the data order is a function of (seed, epoch), dropout draws from
torch's RNG, which is checkpointed, so a run resumed from epoch k ends bit-identical to one that
never stopped. Checkpoints are taken at epoch ends, so the data position of a resume is "the start
of epoch k".
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from adaptkit.data.config import DatasetEntry
from adaptkit.data.history import History
from adaptkit.data.windows import WindowDataset, make_loader, split_batch
from adaptkit.errors import AdaptkitError
from adaptkit.meta import Stats
from adaptkit.model import action_loss
from adaptkit.progress import SILENT, Reporter
from adaptkit.train import distributed as dd
from adaptkit.train.config import TrainConfig
from adaptkit.train.early_stop import EarlyStop, validation_loss
from adaptkit.train.memory import (
    MemoryPlan,
    default_budget,
    plan_memory,
    probe_activations,
    resident_bytes,
)
from adaptkit.train.metrics import MetricsLogger
from adaptkit.train.run_dir import RunDir, SaveFn
from adaptkit.train.schedule import make_optimizer, make_scheduler

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _np_state_to_plain(state: tuple) -> tuple:
    """numpy's RNG state with plain lists: state.pth must load with weights_only=True."""
    name, keys, pos, has_gauss, cached = state
    return (name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached))


def rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": _np_state_to_plain(np.random.get_state()),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes bf16 natively: a CUDA GPU that supports it, or a CPU with
    bf16 instructions (AVX512-BF16 / AMX). Elsewhere bf16 autocast is emulated: on an AVX2-only
    CPU a bf16 training step was measured 16–18× slower than fp32 (bench/bench_train.py)."""
    try:
        if device.type == "cuda":
            return bool(torch.cuda.is_bf16_supported())
        if device.type == "cpu":
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # an older or unusual build: assume not
        pass
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` → bf16 where the device computes it natively, else fp32; others unchanged."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def window_loader(
    entries: Sequence[DatasetEntry],
    stats: Mapping[str, Stats],
    context_len: int,
    cfg: TrainConfig,
    info: dd.DistInfo,
    histories: Mapping[str, Sequence[History]] | None = None,
) -> tuple[WindowDataset, DataLoader]:
    """Training windows of the entries and this rank's loader of single-group batches.

    `histories`: the pre-flight's arrays per task (else every file is read and checked here).
    Entries sharded across ranks (`DatasetEntry.shard`): each rank's windows are its own part
    of the data, so it batches all of them and the ranks agree on the smallest batch count."""
    sharded = any(e.shard[1] > 1 for e in entries)
    dataset = WindowDataset(
        list(entries), stats, context_len, cfg.stride(context_len), histories=histories
    )
    # drop_last: equal batch sizes make the per-batch means average to the global-batch mean,
    # and every rank gets the same number of batches (DDP needs lock-step)
    loader = make_loader(
        dataset,
        cfg.batch_size,
        shuffle=cfg.shuffle,
        seed=cfg.seed,
        drop_last=True,
        rank=0 if sharded else info.rank,
        world_size=1 if sharded else info.world_size,
        num_workers=cfg.num_workers,
    )
    if sharded:
        loader.sampler.max_batches = dd.min_over_ranks(len(loader.sampler), info)
    return dataset, loader


# |value| beyond this in a training batch (observations normalised, rewards scaled) points at the
# data or its stats rather than at the optimiser: healthy normalised inputs stay within tens
HUGE_INPUT = 1e3
_BATCH_FIELDS = (
    ("obs", "normalised observation"),
    ("prev_action", "action"),
    ("target", "target action"),
    ("prev_reward", "reward × reward_scale"),
)


def diagnose_nonfinite(batches: Sequence[Mapping[str, Any]], cfg: TrainConfig) -> str:
    """The likely cause of a non-finite loss, from the batch that produced it."""
    peak: dict[str, float] = {}
    for batch in batches:
        for key, label in _BATCH_FIELDS:
            value = float(batch[key].abs().max()) if batch[key].numel() else 0.0
            peak[label] = max(peak.get(label, 0.0), value)
    label, value = max(peak.items(), key=lambda kv: kv[1], default=("", 0.0))
    if not math.isfinite(value) or value > HUGE_INPUT:
        return (
            f"the batch holds huge values (|{label}| up to {value:.3g}), so the cause is the data, "
            "not the learning rate: check the histories' value ranges and the normalisation stats "
            "(a tiny obs_std blows normalised observations up)"
        )
    ranges = ", ".join(f"|{k}| <= {v:.3g}" for k, v in peak.items())
    fp32 = ", or use --precision fp32" if cfg.precision != "fp32" else ""
    return (
        f"the batch's values are moderate ({ranges}), so the optimiser diverged: lower --lr "
        f"(now {cfg.lr:g}){fp32}"
    )


@dataclass
class LoopResult:
    epoch_losses: list[float]
    checkpoints: list[Path]  # every checkpoint written by this invocation (0000_epoch included)
    steps: int
    tokens: int
    seconds: float
    step_losses: list[float] = field(default_factory=list)
    early_stop: dict[str, Any] | None = None  # EarlyStop.summary: where and why it stopped


class Trainer:
    """Runs epochs over a single-group-batch loader; optimiser over trainable params only.

    Metrics go to `metrics` (opened by the caller on rank 0); without one the trainer opens
    its own metrics.jsonl logger for the run and closes it when `run` ends. `tasks` names the
    tasks of the data, in one order on every rank, for the per-task losses."""

    def __init__(
        self,
        model: nn.Module,
        loader: torch.utils.data.DataLoader,
        cfg: TrainConfig,
        info: dd.DistInfo,
        run_dir: RunDir,
        save: SaveFn,
        context_len: int,
        loss_fn: LossFn | None = None,
        find_unused: bool = True,
        reporter: Reporter = SILENT,
        metrics: MetricsLogger | None = None,
        tasks: Sequence[str] = (),
        val_loader: DataLoader | None = None,
        early_stop: EarlyStop | None = None,
    ) -> None:
        """`val_loader` and `early_stop` together: after every epoch the loss on the held-out
        windows decides whether the epoch is kept and whether to stop (adaptkit.train.early_stop);
        without them every `save_every`-th epoch and the last are saved, as always."""
        self.model = model
        self.val_loader = val_loader
        self.early_stop = early_stop if val_loader is not None else None
        self.loader = loader
        self.sampler = loader.sampler
        self.cfg = cfg
        self.info = info
        self.run_dir = run_dir
        self.save = save
        self.context_len = context_len
        self.loss_fn = loss_fn or action_loss  # MSE over every position, in fp32
        self.reporter = reporter if info.is_main else SILENT
        inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
        self.precision = resolve_precision(cfg.precision, info.device)
        self.plan = self._plan_memory(inner)  # micro-batch and checkpointing from a budget
        self.checkpointing = self.plan.checkpointing
        inner.transformer.checkpointing = self.checkpointing
        self.reporter.note(self.plan.line(cfg.grad_accum, info.world_size))
        self.owns_metrics = metrics is None
        self.metrics = metrics if metrics is not None else MetricsLogger()
        self.tasks = list(tasks)
        self._task_index = {t: i for i, t in enumerate(self.tasks)}
        self._task_sums = np.zeros(len(self.tasks))  # per-task squared error, this step
        self._task_counts = np.zeros(len(self.tasks))
        self.ddp = dd.wrap(model, info, find_unused)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(model, cfg.lr, cfg.betas, cfg.weight_decay)

        batches = len(loader)  # this rank's micro-batches per epoch
        self.steps_per_epoch = batches // cfg.grad_accum  # a partial last step is dropped
        if cfg.max_steps_per_epoch is not None:
            self.steps_per_epoch = min(self.steps_per_epoch, cfg.max_steps_per_epoch)
        if self.steps_per_epoch < 1:
            need = cfg.batch_size * cfg.grad_accum * info.world_size
            raise AdaptkitError(
                f"the data gives {batches} full batch(es) of {cfg.batch_size} windows per process, "
                f"fewer than one optimiser step needs (global batch {need}); "
                "use a smaller --batch-size/--grad-accum/--context-len or more data"
            )
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.scheduler = make_scheduler(
            self.optimizer, self.total_steps, cfg.warmup_ratio, cfg.min_lr_ratio
        )
        self.global_batch = cfg.batch_size * cfg.grad_accum * info.world_size
        self.tokens_per_step = self.global_batch * context_len
        self.epoch = 0  # epochs completed
        self.global_step = 0
        self.epoch_losses: list[float] = []
        self._batches: list[Mapping[str, Any]] = []

    def _plan_memory(self, inner: nn.Module) -> MemoryPlan:
        """What a micro-batch keeps, measured on this model (adaptkit.train.memory), and the
        split of each batch that fits the budget."""
        dev, cfg = self.info.device, self.cfg
        view = self.loader.dataset
        acts = probe_activations(
            inner,
            lambda m: view[[0] * m],  # the first window, m times: no random draw
            self.loss_fn,
            dev,
            lambda: autocast(dev, self.precision),
        )
        resident = resident_bytes(dev)
        if cfg.max_memory is not None:
            budget, source = cfg.max_memory, "--max-memory"
        else:
            budget, source = default_budget(dev, resident)
        trainable = sum(p.numel() for p in inner.parameters() if p.requires_grad)
        plan = plan_memory(
            acts, cfg.batch_size, trainable, resident, budget, source,
            checkpointing=cfg.activation_checkpointing,
        )  # fmt: skip
        # every rank must run the same micro-batches (each one's backward is a collective under
        # DDP), but each measures its own free memory: all take the most cautious plan
        micro = dd.min_over_ranks(plan.micro_batch, self.info)
        ckpt = -dd.min_over_ranks(-int(plan.checkpointing), self.info) == 1
        if (micro, ckpt) != (plan.micro_batch, plan.checkpointing):
            plan = replace(plan, micro_batch=micro, checkpointing=ckpt)
        return plan

    def _chunks(self, batch: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The batch as the plan's micro-batches (itself when it runs in one pass)."""
        if self.plan.chunks == 1:
            return [batch]
        return split_batch(batch, self.plan.micro_batch)

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "epoch_losses": list(self.epoch_losses),
            "rng": rng_state(),  # the data order needs no state: it is a function of (seed, epoch)
            "world_size": self.info.world_size,
            **({"early_stop": self.early_stop.state_dict()} if self.early_stop else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("total_steps") != self.total_steps:
            raise AdaptkitError(
                f"cannot resume: the checkpoint's schedule has {state.get('total_steps')} "
                f"optimiser steps but this run would have {self.total_steps} (epochs, batch size, "
                "grad accumulation, world size, context or data changed); start a new --name"
            )
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.epoch_losses = [float(x) for x in state["epoch_losses"]]
        if self.early_stop is not None and "early_stop" in state:
            self.early_stop.load_state_dict(dict(state["early_stop"]))
        set_rng_state(state["rng"])

    # -- running -------------------------------------------------------------------------
    def _emit(self, event: str, **data: Any) -> None:
        self.reporter.event(event, data)

    def _checkpoint(self) -> Path | None:
        path = None
        if self.info.is_main:
            path = self.save(self.model, self.epoch, self.state_dict())
            self._emit("checkpoint", epoch=self.epoch, path=path)
        dd.barrier(self.info)  # nobody runs ahead of (or exits before) the write
        return path

    def run(self, resume_state: Mapping[str, Any] | None = None) -> LoopResult:
        """Restore the trainer from a checkpoint's state (resume), or seed it and write
        0000_epoch (the model as training starts, as the reference does); then train."""
        resumed = resume_state is not None
        if resumed:
            self.load_state_dict(dict(resume_state))
        if self.owns_metrics and self.info.is_main:
            self.metrics.open(self.run_dir.path, resume_step=self.global_step if resumed else None)
        try:
            initial: list[Path] = []
            if not resumed:
                seed_everything(self.cfg.seed)  # same RNG stream with or without 0000_epoch
                if self.cfg.save_initial:
                    path = self._checkpoint()
                    initial += [path] if path else []
            result = self.fit()
            result.checkpoints[:0] = initial
            return result
        except AdaptkitError as exc:
            # say what the folder now allows: --resume, or simply the same command again
            raise AdaptkitError(f"{exc}; {self.run_dir.recovery()}") from None
        finally:
            if self.owns_metrics:
                self.metrics.close()

    def _count_task_losses(self, batch: dict[str, Any], pred: torch.Tensor) -> None:
        """Add this micro-batch's per-window squared errors to its tasks' sums (no grad)."""
        names = batch.get("task")
        if not self.tasks or not names:
            return
        with torch.no_grad():
            target = batch["target"].to(pred.device)
            per_window = (pred.float() - target.float()).pow(2).flatten(1).mean(1).tolist()
        for name, value in zip(names, per_window, strict=True):
            i = self._task_index.get(name)
            if i is not None:
                self._task_sums[i] += value
                self._task_counts[i] += 1

    def train_step(self, it) -> float:
        """One optimiser step over grad_accum micro-batches from `it`; returns the mean loss."""
        cfg, info = self.cfg, self.info
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        self._batches = []  # this step's micro-batches, for diagnose_nonfinite
        parts = cfg.grad_accum * self.plan.chunks  # equal micro-batches of the global batch
        for micro in range(cfg.grad_accum):
            batch = next(it)
            self._batches.append(batch)
            dev = info.device
            chunks = self._chunks(batch)
            for c, chunk in enumerate(chunks):
                last = micro == cfg.grad_accum - 1 and c == len(chunks) - 1
                with dd.no_sync(self.ddp, last):
                    with autocast(dev, self.precision):
                        pred = self.ddp(
                            chunk["group"],
                            chunk["obs"].to(dev, non_blocking=True),
                            chunk["prev_action"].to(dev, non_blocking=True),
                            chunk["prev_reward"].to(dev, non_blocking=True),
                            chunk["step_num"].to(dev, non_blocking=True),
                        )
                        loss = self.loss_fn(pred, chunk["target"].to(dev, non_blocking=True))
                    self._count_task_losses(chunk, pred)
                    # mean over micro-batches; DDP then averages over ranks: the global mean
                    (loss / parts).backward()
                total += loss.item() / len(chunks)
                del pred, loss
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip, foreach=False)
        self.optimizer.step()
        self.scheduler.step()
        self.global_step += 1
        return total / cfg.grad_accum

    def _per_task(self, sums: np.ndarray, counts: np.ndarray) -> dict[str, float]:
        """Mean squared error of each task seen (MSE over its windows' positions and dims)."""
        return {t: float(sums[i] / counts[i]) for i, t in enumerate(self.tasks) if counts[i] > 0}

    def fit(self) -> LoopResult:
        cfg = self.cfg
        checkpoints: list[Path] = []
        step_losses: list[float] = []
        self.model.train()
        self._emit(
            "start",
            epochs=cfg.epochs,
            start_epoch=self.epoch,
            steps_per_epoch=self.steps_per_epoch,
            total_steps=self.total_steps,
            global_step=self.global_step,
            global_batch=self.global_batch,
            tokens_per_step=self.tokens_per_step,
            world_size=self.info.world_size,
            precision=self.precision,
            precision_asked=cfg.precision,
            emulated_bf16=self.precision == "bf16" and not native_bf16(self.info.device),
        )
        t_start = time.perf_counter()
        tokens = 0
        # early stopping: the trained weights of the kept epoch — at the start the model's own
        # (a fresh run's 0000_epoch, or a resumed run's newest checkpoint, the best so far)
        best: dict[str, torch.Tensor] = {}
        if self.early_stop is not None and self.early_stop.best_epoch == self.epoch:
            params = self.model.named_parameters()
            best = {n: p.detach().to("cpu", copy=True) for n, p in params if p.requires_grad}
        while self.epoch < cfg.epochs:
            if self.early_stop is not None and self.early_stop.stopped_at is not None:
                break  # a resumed run that had already stopped
            self.sampler.set_epoch(self.epoch)
            it = iter(self.loader)
            losses: list[float] = []
            t_last = time.perf_counter()
            task_sums = np.zeros(len(self.tasks))
            task_counts = np.zeros(len(self.tasks))
            for _ in range(self.steps_per_epoch):
                self._task_sums[:] = 0.0
                self._task_counts[:] = 0.0
                loss = self.train_step(it)
                # one all-reduce for the loss and the per-task sums (ratios survive the mean)
                loss, *rest = dd.mean_over_ranks(
                    [loss, *self._task_sums, *self._task_counts], self.info
                )
                sums, counts = np.array(rest[: len(self.tasks)]), np.array(rest[len(self.tasks) :])
                task_sums += sums
                task_counts += counts
                if not math.isfinite(loss):
                    raise AdaptkitError(
                        f"loss became {loss} at step {self.global_step} (epoch {self.epoch + 1}): "
                        + diagnose_nonfinite(self._batches, self.cfg)
                    )
                now = time.perf_counter()
                tps = self.tokens_per_step / max(now - t_last, 1e-9)
                t_last = now
                tokens += self.tokens_per_step
                losses.append(loss)
                step_losses.append(loss)
                lr = self.scheduler.get_last_lr()[0]
                record = {
                    "step": self.global_step,
                    "epoch": self.epoch + 1,
                    "loss": loss,
                    "lr": lr,
                    "tokens_per_s": round(tps, 1),
                    "time": round(now - t_start, 3),
                }
                tasks = self._per_task(sums, counts)
                self.metrics.log_step(
                    self.global_step, {**record, **({"task_loss": tasks} if tasks else {})}
                )
                self._emit("step", total_steps=self.total_steps, epochs=cfg.epochs, **record)
            self.epoch += 1
            self.epoch_losses.append(float(np.mean(losses)))
            epoch_tasks = self._per_task(task_sums, task_counts)
            self.metrics.log_summary(
                self.global_step,
                "epoch",
                {"epoch": self.epoch, "loss": self.epoch_losses[-1], "task_loss": epoch_tasks},
            )
            self._emit("epoch", epoch=self.epoch, loss=self.epoch_losses[-1])
            keep = self.epoch % cfg.save_every == 0 or self.epoch == cfg.epochs
            stop = False
            if self.early_stop is not None and self.val_loader is not None:
                amp = autocast(self.info.device, self.precision)
                # in the plan's micro-batches: a loaded batch may not fit in one forward
                val = validation_loss(
                    self.model, self.val_loader, self.info.device, amp, self.plan.micro_batch
                )
                keep, stop = self.early_stop.update(self.epoch, val)
                stop = stop and self.epoch < cfg.epochs
                if stop:
                    self.early_stop.stopped(self.epoch)
                if keep:  # the best weights so far (what trains: the rest cannot change)
                    params = self.model.named_parameters()
                    best = {
                        n: p.detach().to("cpu", copy=True) for n, p in params if p.requires_grad
                    }
                self.metrics.log_summary(
                    self.global_step,
                    "validation",
                    {"epoch": self.epoch, "val_loss": val, "kept": keep},
                )
                self._emit("validation", epoch=self.epoch, val_loss=val, kept=keep, stop=stop)
            if keep:
                path = self._checkpoint()
                if path is not None:
                    checkpoints.append(path)
            if stop:
                break
        stopped = self.early_stop.summary(cfg.epochs) if self.early_stop is not None else None
        if stopped is not None:
            self.metrics.log_summary(self.global_step, "early_stop", stopped)
            if best and self.early_stop.best_epoch != self.epoch:  # end on the kept weights
                with torch.no_grad():
                    for n, p in self.model.named_parameters():
                        if n in best:
                            p.copy_(best[n].to(p.device))
        return LoopResult(
            epoch_losses=list(self.epoch_losses),
            checkpoints=checkpoints,
            steps=self.global_step,
            tokens=tokens,
            seconds=time.perf_counter() - t_start,
            step_losses=step_losses,
            early_stop=stopped,
        )
