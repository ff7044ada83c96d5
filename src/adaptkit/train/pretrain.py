"""`adaptkit pretrain CONFIG...`: a base model from scratch on every group of the configs."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adaptkit.checkpoint import load_checkpoint, load_training_state, validate_task
from adaptkit.data.config import load_dataset_configs, train_entries
from adaptkit.data.stats import STATS_KEYS
from adaptkit.errors import AdaptkitError
from adaptkit.model import GroupDims, ModelConfig, Vintix
from adaptkit.plugins import get_registry
from adaptkit.surgery import parameter_report
from adaptkit.train import common
from adaptkit.train import distributed as dd
from adaptkit.train.config import RunResult, TrainConfig
from adaptkit.train.loop import Progress, Trainer, seed_everything


def _robot_for_task(task: str) -> str | None:
    try:
        robots = get_registry().robots.values()
    except AdaptkitError:  # a broken plugin must not stop pretraining on plain data
        return None
    return next((r.name for r in robots if r.task == task), None)


def pretrain_metadata(
    task: str, group: str, dims: GroupDims, reward_scale: float, sparsity: int, stats: Mapping
) -> dict[str, Any]:
    """A complete metadata.json entry for one task of the training data."""
    entry: dict[str, Any] = {
        "group_name": group,
        "observation_shape": {"proprio": [dims.obs_dim]},
        "action_dim": dims.act_dim,
        "action_type": "continuous",
        "reward_scale": float(reward_scale),
        "episode_sparsity": sparsity,
        **{k: [float(v) for v in stats[k]] for k in STATS_KEYS},
    }
    robot = _robot_for_task(task)
    if robot:
        entry["robot"] = robot
    validate_task("pretraining metadata", task, entry)
    return entry


def pretrain(
    dataset_config_paths: Sequence[str | Path],
    data_dir: str | Path = "data",
    name: str = "base",
    save_dir: str | Path = "models",
    model_config: ModelConfig | Mapping[str, Any] | str | Path | None = None,
    train_config: TrainConfig | None = None,
    resume: bool = False,
    stats_path: str | Path | None = None,
    device: str | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Train a Vintix model from scratch on all training tasks of the dataset configs."""
    cfg = train_config or TrainConfig()
    info = dd.setup(device)
    try:
        return _pretrain(
            list(dataset_config_paths), Path(data_dir), name, Path(save_dir), model_config,
            cfg, resume, stats_path, info, progress if info.is_main else None,
        )  # fmt: skip
    finally:
        dd.teardown(info)


def _pretrain(
    config_paths, data_dir, name, save_dir, model_config, cfg, resume, stats_path, info, progress
) -> RunResult:
    t0 = time.perf_counter()
    notes: list[str] = []
    run_dir = save_dir / name
    resume_from = common.prepare_run_dir(run_dir, resume, info.is_main)
    entries = train_entries(load_dataset_configs(config_paths, data_dir))
    if not entries:
        raise AdaptkitError(
            f"dataset config(s) {', '.join(map(str, config_paths))} have no 'default' entries"
        )
    files = {e.task: common.check_data(e) for e in entries}

    saved: dict[str, Any] = {}
    if resume_from is not None:
        saved = load_training_state(resume_from) or {}
        cfg = common.resume_settings(saved.get("train_config", {}), cfg, notes, progress)
        ckpt = load_checkpoint(resume_from)
        missing = [e.task for e in entries if e.task not in ckpt.metadata]
        if missing:
            raise AdaptkitError(f"cannot resume from {resume_from}: it has no tasks {missing}")
        stats = {e.task: {k: ckpt.metadata[e.task][k] for k in STATS_KEYS} for e in entries}
        mcfg, model, metadata = ckpt.config, ckpt.model, dict(ckpt.metadata)
        common.note(progress, notes, f"resuming from {resume_from}")
    else:
        if resume:
            common.note(progress, notes, f"--resume: no checkpoint in {run_dir} yet, starting")
        mcfg = common.load_model_config(model_config)
        candidates = [Path(stats_path)] if stats_path else [data_dir / common.STATS_FILE]
        if stats_path and not Path(stats_path).is_file():
            raise AdaptkitError(f"stats file {stats_path}: not found")
        stats, computed = {}, []
        for e in entries:
            stats[e.task], source = common.resolve_stats(e, files[e.task], candidates)
            if source == "computed":
                computed.append(e.task)
        if computed:
            common.note(
                progress, notes, f"computed stats from the data for {', '.join(computed)} "
                "(recorded in the checkpoint metadata)",
            )  # fmt: skip
    for e in entries:
        common.check_stats(e.task, stats[e.task])

    context_len = cfg.context_len or mcfg.context_len
    dataset, loader, stride = common.build_loader(
        entries, stats, context_len, cfg, info.rank, info.world_size
    )
    dims = common.data_dims(dataset)
    if resume_from is None:
        groups: dict[str, GroupDims] = {}
        for e in entries:  # WindowDataset already refused a group with mixed dims
            groups.setdefault(e.group, dims[e.task])
        metadata = {
            e.task: pretrain_metadata(
                e.task, e.group, dims[e.task], e.reward_scale, e.episode_sparsity, stats[e.task]
            )
            for e in entries
        }
        seed_everything(cfg.seed)
        model = Vintix(mcfg, dict(sorted(groups.items())))
        model.set_task2group({t: m["group_name"] for t, m in metadata.items()})
    model = model.to(info.device)
    report = parameter_report(model)
    common.emit(progress, "trainable", rows=report, freeze=None)

    config_json = common.training_config_json(
        cfg, context_len, stride, {"dataset_config_paths": [str(p) for p in config_paths]}
    )
    run_state = {"train_config": cfg.to_dict(), "kind": "pretrain"}
    save = common.make_saver(save_dir, name, metadata, config_json, run_state)
    trainer = Trainer(
        model, loader, cfg, info, run_dir, save, context_len,
        find_unused=common.needs_find_unused(model, dataset.groups), progress=progress,
    )  # fmt: skip
    checkpoints, result = common.fit(trainer, cfg, resume_from, saved)
    out = common.run_result(
        run_dir, checkpoints, result, time.perf_counter() - t0, resume_from,
        trainable={"rows": report, "freeze": None}, notes=notes,
    )  # fmt: skip
    common.emit(progress, "done", result=out)
    return out
