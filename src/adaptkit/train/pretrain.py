"""Pretrain a base model from scratch on every training task of some dataset configs.

Opened, trained and closed as `finetune` is (adaptkit.train.session): the run folder is locked
for the run, and the pre-flight checks every history (`adaptkit.train.preflight`) before
anything is written. What is pretraining's own: every training task of the configs, a fresh
model (or the run's newest checkpoint on resume)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adaptkit import defaults
from adaptkit.adapt.surgery import parameter_report
from adaptkit.ckpt.checkpoint import load_training_state
from adaptkit.ckpt.config_file import read_model_config
from adaptkit.ckpt.load import load_checkpoint
from adaptkit.data.config import load_dataset_configs, train_entries
from adaptkit.data.history import extra_observation_rows, read_task_metadata
from adaptkit.data.layout import spec_for_data
from adaptkit.data.moments import stats_from_moments
from adaptkit.data.stats_file import choose_stats
from adaptkit.errors import AdaptkitError
from adaptkit.meta import CheckpointMeta, TaskMeta
from adaptkit.model import GroupDims, ModelConfig, Vintix
from adaptkit.plugins import Registry
from adaptkit.progress import SILENT, Reporter
from adaptkit.train import distributed as dd
from adaptkit.train.config import RunResult, TrainConfig
from adaptkit.train.loop import seed_everything
from adaptkit.train.preflight import check_training_data
from adaptkit.train.session import Session, run_session


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
    reporter: Reporter = SILENT,
    registry: Registry | None = None,
    keep: int | None = None,
    log: str | Sequence[str] | None = None,
    shard_data: bool = False,
    command: str | None = None,
) -> RunResult:
    """Train a Vintix model from scratch on all training tasks of the dataset configs.

    `registry` (optional) names the robot of each task in the metadata and adds its plugin's
    stats file to the stats sources. `keep`: only the newest N epochs stay on disk. `log`:
    metrics destinations (jsonl, tensorboard, wandb; default jsonl). `shard_data`: under
    torchrun each process reads only its part of every task's history files (rank r: files r,
    r + W, ...) instead of all of them; stats are merged over the parts (docs/cluster.md).
    `command`: the command line that started the run (the CLI's argv), recorded in config.json.
    """
    return run_session(
        save_dir,
        name,
        lambda session: _pretrain(
            session,
            [Path(p) for p in dataset_config_paths],
            Path(data_dir),
            model_config,
            train_config or TrainConfig(),
            resume,
            Path(stats_path) if stats_path else None,
            registry,
            shard_data,
            command,
        ),
        keep=keep,
        device=device,
        reporter=reporter,
        log=log,
    )


def _pretrain(
    session: Session,
    config_paths: list[Path],
    data_dir: Path,
    model_config: ModelConfig | Mapping[str, Any] | str | Path | None,
    cfg: TrainConfig,
    resume: bool,
    stats_path: Path | None,
    registry: Registry | None,
    shard_data: bool = False,
    command: str | None = None,
) -> RunResult:
    """The pretraining body of a session: every training task's data, a fresh model (or the
    run's newest checkpoint), trained."""
    info, reporter = session.info, session.reporter
    # -- pre-flight: nothing is written until all of it passes ---------------------------------
    resume_from = session.prepare(resume)
    entries = train_entries(load_dataset_configs(config_paths, data_dir))
    if shard_data and info.enabled:
        entries = [dataclasses.replace(e, shard=(info.rank, info.world_size)) for e in entries]
    if not entries:
        raise AdaptkitError(
            f"dataset config(s) {', '.join(map(str, config_paths))} have no 'default' entries"
        )
    files = {e.task: e.history_files() for e in entries}  # a missing/empty folder, first
    robots = {s.task: s for s in registry.robots.values()} if registry is not None else {}
    layouts: dict[str, str | None] = {}
    for e in entries:  # the data's width selects each robot's layout (recorded in the metadata)
        if e.task in robots:
            robots[e.task], _ = spec_for_data(robots[e.task], e.path, files[e.task])
            layouts[e.task] = robots[e.task].obs_layout
        else:
            recorded = (read_task_metadata(e.path) or {}).get("obs_layout")
            layouts[e.task] = recorded if isinstance(recorded, str) else None
        forked = sum(extra_observation_rows(p)[0] > 0 for p in files[e.task])
        if forked:
            reporter.note(
                f"{forked} of {len(files[e.task])} histories of '{e.task}' store one observation "
                "row more than actions per chunk (the quadruped fork's writer): each such "
                "chunk's last observation row is dropped so o_t pairs with a_t"
            )

    saved: dict[str, Any] | None = None
    if resume_from is not None:
        saved = load_training_state(resume_from) or {}
        cfg = session.resumed(cfg, saved)
        ckpt = load_checkpoint(resume_from)
        missing = [e.task for e in entries if e.task not in ckpt.meta]
        if missing:
            raise AdaptkitError(f"cannot resume from {resume_from}: it has no tasks {missing}")
        model, meta = ckpt.model, ckpt.meta
        reporter.note(f"resuming from {resume_from}")
    else:
        if resume:
            reporter.note(f"--resume: no checkpoint in {session.run.path} yet, starting")
        mcfg = (
            model_config
            if isinstance(model_config, ModelConfig)
            else read_model_config(model_config)
        )
        model, meta = None, None
    given = {}
    for e in entries:
        spec = robots.get(e.task)
        given[e.task] = choose_stats(
            e.task,
            checkpoint=meta,
            explicit=stats_path,
            plugin_file=spec.stats_path if spec else None,
            data_file=data_dir / defaults.STATS_FILE,
            dims=GroupDims(robots[e.task].obs_dim, robots[e.task].action_dim)
            if e.task in robots
            else None,
        )
    # every history checked (dims vs plugins and checkpoint, NaN/inf, step_num, rows) in the
    # one pass that also reads them for training and computes missing stats
    data = check_training_data(entries, robots.values(), meta, given, reporter)
    stats = data.stats
    if shard_data and info.enabled:  # every rank: the stats of all the data, not of its part
        merged = dd.merge_moments_over_ranks(data.moments, info)
        for task, (obs_m, act_m) in merged.items():
            stats[task] = stats_from_moments(obs_m, act_m, f"task '{task}'")
    if data.computed:
        reporter.note(
            f"computed stats from the data for {', '.join(data.computed)} "
            "(recorded in the checkpoint metadata)"
        )
    context_len = cfg.context_len or (model.config if model else mcfg).context_len
    dataset, loader = session.windows(entries, stats, context_len, cfg, data.histories)
    if model is None:
        dims = dataset.dims  # WindowDataset already refused a group with mixed dims
        meta = CheckpointMeta(
            TaskMeta.new(
                e.task,
                e.group,
                dims[e.task],
                stats[e.task],
                reward_scale=e.reward_scale,
                episode_sparsity=e.episode_sparsity,
                robot=robots[e.task].name if e.task in robots else None,
                obs_layout=layouts[e.task],
            )
            for e in entries
        )
        seed_everything(cfg.seed)
        model = Vintix(mcfg, dict(sorted(meta.groups.items())))
    model = model.to(info.device)
    report = parameter_report(model)
    reporter.event("trainable", {"rows": report, "freeze": None})

    # -- fit -----------------------------------------------------------------------------------
    config_json = cfg.config_json(
        context_len, {"dataset_config_paths": [str(p) for p in config_paths], "command": command}
    )
    run_state = {"train_config": cfg.to_dict(), "kind": "pretrain"}
    loop = session.fit(
        model,
        loader,
        cfg,
        context_len,
        meta,
        config_json,
        run_state,
        groups=dataset.groups,
        tasks=list(dataset.dims),
        saved=saved,
    )
    return session.result(loop, resume_from, trainable={"rows": report, "freeze": None})
