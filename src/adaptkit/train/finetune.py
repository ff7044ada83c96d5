"""`adaptkit finetune ROBOT`: load → pre-flight → add the robot's group → freeze → train → save.

Every check that can fail runs before anything is written; the base checkpoint is only read.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from adaptkit.checkpoint import (
    Checkpoint,
    group_tasks,
    load_checkpoint,
    load_training_state,
    save_adapter,
)
from adaptkit.data.config import DatasetEntry, load_dataset_configs, train_entries
from adaptkit.data.stats import STATS_KEYS
from adaptkit.errors import AdaptkitError
from adaptkit.model import GroupDims
from adaptkit.robot import RobotSpec
from adaptkit.surgery import (
    add_group,
    freeze,
    frozen_fingerprint,
    parameter_report,
    verify_frozen,
)
from adaptkit.train import common
from adaptkit.train import distributed as dd
from adaptkit.train.config import RunResult, TrainConfig
from adaptkit.train.loop import Progress, Trainer, seed_everything

ADAPTER_FILE = "adapter.pth"
DEFAULT_PRETRAINED = Path("models/base")


def robot_entry(
    robot: RobotSpec,
    data_dir: Path,
    dataset_config_paths: Sequence[str | Path] | None,
    notes: list[str],
    progress: Progress | None,
) -> DatasetEntry:
    """The robot's dataset entry: from the given configs (its task), else from its plugin."""
    if not dataset_config_paths:
        path = (Path(data_dir) / robot.data_path).resolve()
        return DatasetEntry(
            task=robot.task,
            type="default",
            path=path,
            group=robot.group,
            reward_scale=robot.reward_scale,
            episode_sparsity=robot.episode_sparsity,
            raw_path=robot.data_path,
        )
    entries = load_dataset_configs(dataset_config_paths, data_dir)
    train = {e.task: e for e in train_entries(entries)}
    if robot.task not in train:
        listed = ", ".join(sorted(train)) or "none"
        raise AdaptkitError(
            f"dataset config(s) {', '.join(map(str, dataset_config_paths))} have no training "
            f"entry for robot '{robot.name}' (task '{robot.task}'); tasks found: {listed}"
        )
    entry = train[robot.task]
    if entry.group != robot.group:
        raise AdaptkitError(
            f"{entry.source}: task '{robot.task}' is in group '{entry.group}' but robot "
            f"'{robot.name}' declares group '{robot.group}'"
        )
    others = sorted(t for t in train if t != robot.task)
    if others:
        common.note(progress, notes, f"fine-tuning on '{robot.task}' only; ignoring {others}")
    return entry


def _preflight_base(ckpt: Checkpoint, robot: RobotSpec) -> None:
    tasks = group_tasks(ckpt.metadata)
    if robot.group in ckpt.model.groups or robot.group in tasks:
        users = tasks.get(robot.group, [])
        shared = f", shared by tasks {users}" if users else ""
        raise AdaptkitError(
            f"checkpoint {ckpt.path} already has group '{robot.group}'{shared}; refusing to "
            "overwrite it (fine-tune from a checkpoint without it, or --resume a run)"
        )
    if robot.task in ckpt.metadata:
        raise AdaptkitError(
            f"checkpoint {ckpt.path} already has task '{robot.task}' "
            f"(group '{ckpt.metadata[robot.task].get('group_name')}')"
        )


def _check_dims(robot: RobotSpec, found: GroupDims, where: str) -> None:
    if (found.obs_dim, found.act_dim) != (robot.obs_dim, robot.action_dim):
        raise AdaptkitError(
            f"{where} has obs/action dims {found.obs_dim}/{found.act_dim} but robot "
            f"'{robot.name}' declares {robot.obs_dim}/{robot.action_dim}"
        )


def finetune(
    robot: RobotSpec,
    pretrained_path: str | Path = DEFAULT_PRETRAINED,
    dataset_config_paths: Sequence[str | Path] | None = None,
    data_dir: str | Path = "data",
    name: str | None = None,
    save_dir: str | Path = "models",
    freeze_mode: str = "transformer",
    freeze_patterns: Sequence[str] | None = None,
    train_config: TrainConfig | None = None,
    resume: bool = False,
    stats_path: str | Path | None = None,
    device: str | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Add `robot` as a new group to a pretrained checkpoint and train it on the robot's data.

    Writes `{save_dir}/{name}/{epoch:04d}_epoch/` (+ `adapter.pth`: the new group only) and
    `metrics.jsonl`; returns what happened, including the frozen-weight verification.
    """
    cfg = train_config or TrainConfig.for_finetune(freeze_mode)
    name = name or f"{robot.name}_finetune"
    save_dir, data_dir = Path(save_dir), Path(data_dir)
    run_dir = save_dir / name
    notes: list[str] = []
    info = dd.setup(device)
    try:
        return _finetune(
            robot, Path(pretrained_path), dataset_config_paths, data_dir, name, save_dir,
            run_dir, freeze_mode, freeze_patterns, cfg, resume, stats_path, info, notes, progress,
        )  # fmt: skip
    finally:
        dd.teardown(info)


def _finetune(
    robot, pretrained_path, dataset_config_paths, data_dir, name, save_dir, run_dir,
    freeze_mode, freeze_patterns, cfg, resume, stats_path, info, notes, progress,
) -> RunResult:  # fmt: skip
    t0 = time.perf_counter()
    if not info.is_main:
        progress = None
    # -- pre-flight: nothing is written until all of it passes -------------------------------
    resume_from = common.prepare_run_dir(run_dir, resume, info.is_main)
    entry = robot_entry(robot, data_dir, dataset_config_paths, notes, progress)
    hint = f" (make it with `adaptkit collect {robot.name} --data-dir {data_dir}`)"
    files = common.check_data(entry, hint)

    saved: dict[str, Any] = {}
    if resume_from is not None:
        saved = load_training_state(resume_from) or {}
        cfg = common.resume_settings(saved.get("train_config", {}), cfg, notes, progress)
        freeze_mode = saved.get("freeze_mode", freeze_mode)
        freeze_patterns = saved.get("freeze_patterns", freeze_patterns)
        ckpt = load_checkpoint(resume_from)
        if robot.group not in ckpt.model.groups or robot.task not in ckpt.metadata:
            raise AdaptkitError(
                f"cannot resume from {resume_from}: it has no group '{robot.group}' / task "
                f"'{robot.task}' (was it a fine-tune of robot '{robot.name}'?)"
            )
        stats = {k: ckpt.metadata[robot.task][k] for k in STATS_KEYS}
        common.note(progress, notes, f"resuming from {resume_from}")
    else:
        if resume:
            common.note(progress, notes, f"--resume: no checkpoint in {run_dir} yet, starting")
        ckpt = load_checkpoint(pretrained_path)
        _preflight_base(ckpt, robot)
        candidates = [Path(stats_path)] if stats_path else []
        candidates += [robot.stats_path, data_dir / common.STATS_FILE]
        if stats_path and not Path(stats_path).is_file():
            raise AdaptkitError(f"stats file {stats_path}: not found")
        stats, source = common.resolve_stats(entry, files, candidates)
        if source == "computed":
            common.note(
                progress,
                notes,
                f"task '{robot.task}' had no stats: computed them from {len(files)} "
                "history file(s) and recorded them in the checkpoint metadata",
            )
        else:
            common.note(progress, notes, f"stats of '{robot.task}' from {source}")
    dims = GroupDims(robot.obs_dim, robot.action_dim)
    common.check_stats(robot.task, stats, dims)

    model = ckpt.model.to(info.device)
    context_len = cfg.context_len or model.config.context_len
    dataset, loader, stride = common.build_loader(
        [entry], {robot.task: stats}, context_len, cfg, info.rank, info.world_size
    )
    _check_dims(robot, common.data_dims(dataset)[robot.task], f"data in {entry.path}")

    # -- surgery -------------------------------------------------------------------------------
    metadata = dict(ckpt.metadata)
    if resume_from is None:
        seed_everything(cfg.seed)  # the new group's initial weights depend on the seed only
        add_group(model, metadata, robot, stats)
        base_fingerprint = ckpt.fingerprint
    else:
        if "base_fingerprint" not in saved:
            raise AdaptkitError(
                f"cannot resume from {resume_from}: its state.pth is not a fine-tune's "
                "(no base fingerprint); resume it with the command that started it"
            )
        base_fingerprint = saved["base_fingerprint"]
    frozen = freeze(model, freeze_mode, new_group=robot.group, patterns=freeze_patterns)
    before = saved.get("frozen_hashes") or frozen_fingerprint(model)
    report = parameter_report(model)
    common.emit(progress, "trainable", rows=report, freeze=frozen.as_dict())

    config_json = common.training_config_json(
        cfg,
        context_len,
        stride,
        {
            **{k: v for k, v in ckpt.raw_config.items() if k != "adaptkit_train"},
            "dataset_config_paths": [str(p) for p in dataset_config_paths or []],
            "pretrained_path": str(saved.get("pretrained_path", pretrained_path)),
            "freeze": freeze_mode,
            "robot": robot.name,
        },
    )
    run_state = {
        "train_config": cfg.to_dict(),
        "freeze_mode": freeze_mode,
        "freeze_patterns": list(freeze_patterns or []),
        "frozen_hashes": before,
        "base_fingerprint": base_fingerprint,
        "pretrained_path": str(saved.get("pretrained_path", pretrained_path)),
        "kind": "finetune",
        "robot": robot.name,
    }

    def write_adapter(m: torch.nn.Module, path: Path) -> None:
        save_adapter(path / ADAPTER_FILE, m, robot.group, metadata, base_fingerprint)

    save = common.make_saver(save_dir, name, metadata, config_json, run_state, write_adapter)
    trainer = Trainer(
        model,
        loader,
        cfg,
        info,
        run_dir,
        save,
        context_len,
        find_unused=common.needs_find_unused(model, [robot.group]),
        progress=progress,
    )
    if resume_from is not None and info.is_main and not (resume_from / ADAPTER_FILE).is_file():
        write_adapter(model, resume_from)  # the kill fell between checkpoint and adapter
    checkpoints, result = common.fit(trainer, cfg, resume_from, saved)

    # -- verify: the frozen tensors of the saved weights are bit-identical to the base ---------
    verified, detail = None, "nothing frozen (full fine-tune)"
    final = checkpoints[-1] if checkpoints else resume_from
    if before:
        verify_frozen(before, model)
        if info.is_main and final is not None:
            saved_sd = torch.load(final / "model.pth", map_location="cpu", weights_only=True)
            verify_frozen(before, saved_sd)
        verified = True
        detail = (
            f"{len(before)} frozen tensors (transformer, old groups, paddings) bit-identical "
            "to the base"
        )
    out = common.run_result(
        run_dir, checkpoints, result, time.perf_counter() - t0, resume_from,
        trainable={"rows": report, "freeze": frozen.as_dict()},
        frozen_verified=verified,
        frozen_report=detail,
        adapter=(final / ADAPTER_FILE) if final is not None else None,
        notes=notes,
    )  # fmt: skip
    common.emit(progress, "done", result=out)
    return out
