"""Fine-tune a robot as a new group of a pretrained model: pre-flight → surgery → fit → verify.

`FinetuneJob` (adaptkit.train.config) holds every setting, built once by the CLI or a Python
caller; `finetune(job)` reads top to bottom. Every check that can fail runs before anything is
written; the base checkpoint is only read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from adaptkit import defaults
from adaptkit.checkpoint import (
    MODEL_FILE,
    Checkpoint,
    load_checkpoint,
    load_state_dict_file,
    load_training_state,
    save_adapter,
)
from adaptkit.data.config import DatasetEntry, robot_entry
from adaptkit.data.stats import compute_stats
from adaptkit.errors import AdaptkitError
from adaptkit.meta import Stats, choose_stats
from adaptkit.model import GroupDims
from adaptkit.progress import SILENT, NoteCollector, Reporter
from adaptkit.surgery import (
    FreezeMode,
    add_group,
    freeze,
    frozen_fingerprint,
    parameter_report,
    verify_frozen,
)
from adaptkit.train import distributed as dd
from adaptkit.train.config import FinetuneJob, RunResult, TrainConfig
from adaptkit.train.loop import Trainer, seed_everything, window_loader
from adaptkit.train.metrics import MetricsLogger, check_installed
from adaptkit.train.run_dir import RunDir

ADAPTER_FILE = "adapter.pth"


@dataclass
class _Start:
    """Where training starts: the base plus a new group, or a run's checkpoint (resume)."""

    ckpt: Checkpoint
    cfg: TrainConfig
    freeze: FreezeMode
    patterns: tuple[str, ...]
    stats: Stats
    base_fingerprint: str
    pretrained_path: str
    saved: dict[str, Any] = field(default_factory=dict)  # the trainer state to resume from


def finetune(
    job: FinetuneJob, reporter: Reporter = SILENT, metrics: MetricsLogger | None = None
) -> RunResult:
    """Add `job.robot` as a new group to a pretrained checkpoint and train it on its data.

    Writes `{save_dir}/{name}/{epoch:04d}_epoch/` (+ `adapter.pth`: the new group only) and
    logs metrics to `job.log` (metrics.jsonl by default); returns what happened, including the
    frozen-weight verification. Pass `metrics` to keep logging after training (it is opened
    here on rank 0 and left open for the caller to close).
    """
    info = dd.setup(job.device)
    own = metrics is None
    metrics = MetricsLogger(job.log) if metrics is None else metrics
    try:
        return _finetune(job, info, NoteCollector(reporter if info.is_main else SILENT), metrics)
    finally:
        if own:
            metrics.close()
        dd.teardown(info)


def _finetune(
    job: FinetuneJob, info: dd.DistInfo, reporter: NoteCollector, metrics: MetricsLogger
) -> RunResult:
    t0 = time.perf_counter()
    robot = job.robot
    check_installed(metrics.destinations)
    # -- pre-flight: nothing is written until all of it passes -------------------------------
    run = RunDir(job.save_dir, job.run_name)
    resume_from = run.prepare(job.resume, info.is_main)
    entry, ignored = robot_entry(robot, job.data_folder, job.dataset_config_paths)
    if ignored:
        reporter.note(f"fine-tuning on '{robot.task}' only; ignoring {ignored}")
    hint = f" (make it with `adaptkit collect {robot.name} --data-dir {job.data_folder}`)"
    files = entry.history_files(hint)
    if resume_from is not None:
        start = _resume(job, resume_from, reporter)
    else:
        if job.resume:
            reporter.note(f"--resume: no checkpoint in {run.path} yet, starting")
        start = _fresh(job, entry, files, reporter)
    cfg = start.cfg
    model = start.ckpt.model.to(info.device)
    context_len = cfg.context_len or model.config.context_len
    dataset, loader = window_loader([entry], {robot.task: start.stats}, context_len, cfg, info)
    found = dataset.dims[robot.task]
    if found != GroupDims(robot.obs_dim, robot.action_dim):
        raise AdaptkitError(
            f"data in {entry.path} has obs/action dims {found.obs_dim}/{found.act_dim} but robot "
            f"'{robot.name}' declares {robot.obs_dim}/{robot.action_dim}"
        )

    # -- surgery: a new group, everything else frozen ------------------------------------------
    meta = start.ckpt.meta
    if resume_from is None:
        seed_everything(cfg.seed)  # the new group's initial weights depend on the seed only
        add_group(model, meta, robot, start.stats)
    frozen = freeze(model, start.freeze, new_group=robot.group, patterns=start.patterns)
    before = start.saved.get("frozen_hashes") or frozen_fingerprint(model)
    report = parameter_report(model)
    reporter.event("trainable", {"rows": report, "freeze": frozen.as_dict()})

    # -- fit -----------------------------------------------------------------------------------
    config_json = cfg.config_json(
        context_len,
        {
            **{k: v for k, v in start.ckpt.config.extra.items() if k != "adaptkit_train"},
            "dataset_config_paths": [str(p) for p in job.dataset_config_paths],
            "pretrained_path": start.pretrained_path,
            "freeze": start.freeze.value,
            "robot": robot.name,
        },
    )
    run_state = {
        "train_config": cfg.to_dict(),
        "freeze_mode": start.freeze.value,
        "freeze_patterns": list(start.patterns),
        "frozen_hashes": before,
        "base_fingerprint": start.base_fingerprint,
        "pretrained_path": start.pretrained_path,
        "kind": "finetune",
        "robot": robot.name,
    }

    def write_adapter(m: torch.nn.Module, path: Path) -> None:
        save_adapter(path / ADAPTER_FILE, m, robot.group, meta, start.base_fingerprint)

    if info.is_main:
        metrics.open(
            run.path,
            resume_step=start.saved.get("global_step") if resume_from is not None else None,
            config={**config_json, "trainable": frozen.as_dict()},
        )
    trainer = Trainer(
        model,
        loader,
        cfg,
        info,
        run,
        run.saver(meta, config_json, run_state, write_adapter),
        context_len,
        find_unused=dd.needs_find_unused(model, [robot.group]),
        reporter=reporter,
        metrics=metrics,
        tasks=list(dataset.dims),
    )
    if resume_from is not None and info.is_main and not (resume_from / ADAPTER_FILE).is_file():
        write_adapter(model, resume_from)  # the kill fell between checkpoint and adapter
    loop = trainer.run(start.saved if resume_from is not None else None)

    # -- verify: the frozen tensors of the saved weights are bit-identical to the base ---------
    verified, detail = None, "nothing frozen (full fine-tune)"
    final = loop.checkpoints[-1] if loop.checkpoints else resume_from
    if before:
        verify_frozen(before, model)
        if info.is_main and final is not None:
            verify_frozen(before, load_state_dict_file(final / MODEL_FILE))
        verified = True
        detail = (
            f"{len(before)} frozen tensors (transformer, old groups, paddings) bit-identical "
            "to the base"
        )
    result = RunResult.from_loop(
        run.path,
        loop,
        time.perf_counter() - t0,
        resume_from,
        trainable={"rows": report, "freeze": frozen.as_dict()},
        frozen_verified=verified,
        frozen_report=detail,
        adapter=(final / ADAPTER_FILE) if final is not None else None,
        notes=reporter.notes,
    )
    reporter.event("done", {"result": result})
    return result


def _fresh(job: FinetuneJob, entry: DatasetEntry, files: list[Path], reporter: Reporter) -> _Start:
    """The base checkpoint, checked to be free of the robot's group and task, and its stats."""
    robot = job.robot
    ckpt = load_checkpoint(job.base_path)
    tasks = ckpt.meta.group_tasks()
    if robot.group in ckpt.model.groups or robot.group in tasks:
        users = tasks.get(robot.group, [])
        shared = f", shared by tasks {users}" if users else ""
        raise AdaptkitError(
            f"checkpoint {ckpt.path} already has group '{robot.group}'{shared}; refusing to "
            "overwrite it (fine-tune from a checkpoint without it, or --resume a run)"
        )
    if robot.task in ckpt.meta:
        raise AdaptkitError(
            f"checkpoint {ckpt.path} already has task '{robot.task}' "
            f"(group '{ckpt.meta[robot.task].group}')"
        )
    chosen = choose_stats(
        robot.task,
        explicit=job.stats_path,
        plugin_file=robot.stats_path,
        data_file=job.data_folder / defaults.STATS_FILE,
        compute=lambda: compute_stats(files),
    )
    assert chosen is not None  # compute always answers
    stats, source = chosen
    computed = source.startswith("computed")
    if (stats.obs_dim, stats.act_dim) != (robot.obs_dim, robot.action_dim):
        where = f"data in {entry.path}" if computed else f"stats of '{robot.task}' in {source}"
        raise AdaptkitError(
            f"{where} has obs/action dims {stats.obs_dim}/{stats.act_dim} but robot "
            f"'{robot.name}' declares {robot.obs_dim}/{robot.action_dim}"
        )
    if computed:
        reporter.note(
            f"task '{robot.task}' had no stats: computed them from {len(files)} history file(s) "
            "and recorded them in the checkpoint metadata"
        )
    else:
        reporter.note(f"stats of '{robot.task}' from {source}")
    return _Start(
        ckpt=ckpt,
        cfg=job.train,
        freeze=job.freeze,
        patterns=job.freeze_patterns,
        stats=stats,
        base_fingerprint=ckpt.fingerprint,
        pretrained_path=str(job.base_path),
    )


def _resume(job: FinetuneJob, resume_from: Path, reporter: Reporter) -> _Start:
    """The run's newest checkpoint; the run keeps its own settings, stats and base."""
    robot = job.robot
    saved = load_training_state(resume_from) or {}
    if saved.get("kind") != "finetune" or "base_fingerprint" not in saved:
        raise AdaptkitError(
            f"cannot resume from {resume_from}: its state.pth is not a fine-tune's "
            "(no base fingerprint); resume it with the command that started it"
        )
    cfg, ignored = job.train.resumed(saved.get("train_config", {}))
    if ignored:
        reporter.note("resuming with the run's own settings; ignored " + ", ".join(ignored))
    ckpt = load_checkpoint(resume_from)
    if robot.group not in ckpt.model.groups or robot.task not in ckpt.meta:
        raise AdaptkitError(
            f"cannot resume from {resume_from}: it has no group '{robot.group}' / task "
            f"'{robot.task}' (was it a fine-tune of robot '{robot.name}'?)"
        )
    reporter.note(f"resuming from {resume_from}")
    return _Start(
        ckpt=ckpt,
        cfg=cfg,
        freeze=FreezeMode(saved.get("freeze_mode", job.freeze)),
        patterns=tuple(saved.get("freeze_patterns", job.freeze_patterns)),
        stats=ckpt.meta[robot.task].stats,
        base_fingerprint=saved["base_fingerprint"],
        pretrained_path=str(saved.get("pretrained_path", job.base_path)),
        saved=saved,
    )
