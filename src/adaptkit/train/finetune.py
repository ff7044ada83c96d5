"""Fine-tune a robot as a new group of a pretrained model: pre-flight → surgery → fit → verify.

`FinetuneJob` (adaptkit.train.config) holds every setting, built once by the CLI or a Python
caller; `finetune(job)` reads top to bottom. The run is opened, trained and closed as a
pretraining run is (adaptkit.train.session): the run folder is locked for the whole run; every
check that can fail (the data included: `adaptkit.train.preflight`) runs before anything is
written; the base checkpoint is only read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from adaptkit import defaults
from adaptkit.adapt.modes import START_AUTO, START_FRESH
from adaptkit.adapt.surgery import (
    apply_mode,
    freeze,
    frozen_fingerprint,
    parameter_report,
    verify_frozen,
)
from adaptkit.ckpt.adapter import (
    BaseRef,
    adapter_config,
    read_adapter,
    save_adapter,
    write_adapter_files,
)
from adaptkit.ckpt.checkpoint import (
    Checkpoint,
    fingerprint,
    load_state_dict_file,
    load_training_state,
    save_checkpoint,
)
from adaptkit.ckpt.hub import parse_hub_ref
from adaptkit.ckpt.layout import ADAPTER_FILES, MODEL_FILE, is_full
from adaptkit.ckpt.load import load_checkpoint
from adaptkit.ckpt.shipped import is_shipped_name, portable_name
from adaptkit.ckpt.token_order import own_task_data, settle_token_order
from adaptkit.data.config import DatasetEntry, load_dataset_configs, robot_entry
from adaptkit.data.history import extra_observation_rows
from adaptkit.data.layout import spec_for_data
from adaptkit.data.provenance import data_record
from adaptkit.data.stats_file import choose_stats
from adaptkit.defaults import FreezeMode, SaveFormat
from adaptkit.errors import AdaptkitError
from adaptkit.meta import Stats
from adaptkit.model import GroupDims, Vintix
from adaptkit.plugins import get_registry, plugin_record
from adaptkit.progress import SILENT, Reporter
from adaptkit.robot import RobotSpec
from adaptkit.train.config import FinetuneJob, RunResult, TrainConfig
from adaptkit.train.early_stop import MIN_EPOCHS, EarlyStop, split_histories
from adaptkit.train.loop import seed_everything
from adaptkit.train.metrics import MetricsLogger
from adaptkit.train.preflight import check_training_data
from adaptkit.train.session import Session, run_session


@dataclass
class _Start:
    """Where training starts: the base plus a new group, or a run's checkpoint (resume)."""

    ckpt: Checkpoint
    robot: RobotSpec  # in the observation layout of its data
    cfg: TrainConfig
    mode: str  # the adaptation mode's name (adaptkit.adapt.modes)
    freeze: FreezeMode
    patterns: tuple[str, ...]
    stats: tuple[Stats, str] | None  # (stats, source); None: computed by the pre-flight
    base: BaseRef
    base_bytes: int | None  # size of the base's weights (None on resume: the run's format holds)
    saved: dict[str, Any] = field(default_factory=dict)  # the trainer state to resume from
    init: dict[str, Any] | None = None  # how the new group started (config.json adaptkit_init)


def finetune(
    job: FinetuneJob, reporter: Reporter = SILENT, metrics: MetricsLogger | None = None
) -> RunResult:
    """Add `job.robot` as a new group to a pretrained checkpoint and train it on its data.

    Writes `{save_dir}/{name}/{epoch:04d}_epoch/` and logs metrics to `job.log` (metrics.jsonl
    by default); returns what happened, including the frozen-weight verification. Each epoch is
    a full checkpoint (with the adapter files beside when only the new group trains), or —
    `job.save`, by default when only the new group trains and the base is large — the adapter
    alone (adaptkit.ckpt.adapter). Pass `metrics` to keep logging after training (it is opened here
    on rank 0 and left open for the caller to close).
    """
    return run_session(
        job.save_dir,
        job.run_name,
        lambda session: _finetune(session, job),
        keep=job.keep,
        device=job.device,
        reporter=reporter,
        log=job.log,
        metrics=metrics,
    )


def _finetune(session: Session, job: FinetuneJob) -> RunResult:
    """The fine-tune body of a session: the robot's data, the base plus a new group (or the
    run's newest checkpoint), trained, then the frozen weights verified."""
    info, reporter, run = session.info, session.reporter, session.run
    # -- pre-flight: nothing is written until all of it passes -------------------------------
    resume_from = session.prepare(job.resume)
    # without a dataset config the robot's own folder holds its data, per layout
    named = job.robot.for_layout(job.obs_layout) if job.obs_layout else job.robot
    entry, ignored = robot_entry(named, job.data_folder, job.dataset_config_paths)
    if ignored:
        reporter.note(f"fine-tuning on '{named.task}' only; ignoring {ignored}")
    layout = f" --obs-layout {named.obs_layout}" if named is not named.plugin_spec else ""
    hint = f" (make it with `adaptkit collect {named.name}{layout} --data-dir {job.data_folder}`)"
    files = entry.history_files(hint)
    robot = _data_robot(job, entry, files, reporter)
    if resume_from is not None:
        start = _resume(session, job, robot, resume_from)
    else:
        if job.resume:
            reporter.note(f"--resume: no checkpoint in {run.path} yet, starting")
        start = _fresh(job, robot, reporter)
    # every history checked (dims, NaN/inf, step_num, rows) in the one pass that also reads
    # them for training and computes the stats when no source has them
    data = check_training_data(
        [entry], [robot], start.ckpt.meta, {robot.task: start.stats}, reporter
    )
    stats, source = data.stats[robot.task], data.sources[robot.task]
    if (stats.obs_dim, stats.act_dim) != (robot.obs_dim, robot.action_dim):
        raise AdaptkitError(
            f"stats of '{robot.task}' in {source} have obs/action dims {stats.obs_dim}/"
            f"{stats.act_dim} but robot '{robot.name}' declares {robot.obs_dim}/{robot.action_dim}"
        )
    if resume_from is None:
        if data.computed:
            reporter.note(
                f"task '{robot.task}' had no stats: computed them from {len(files)} history "
                "file(s) and recorded them in the checkpoint metadata"
            )
        else:
            reporter.note(f"stats of '{robot.task}' from {source}")
    cfg = start.cfg
    model = start.ckpt.model.to(info.device)
    context_len = cfg.context_len or model.config.context_len
    train_histories, val_loader, early = dict(data.histories), None, None
    if cfg.val_share > 0 and cfg.epochs >= MIN_EPOCHS:  # the same split on --resume
        kept, held, how = split_histories(data.histories[robot.task], cfg.val_share, context_len)
        if held:
            train_histories = {robot.task: kept}
            val_loader = session.held_out_windows(
                [entry], {robot.task: stats}, context_len, cfg, {robot.task: held}
            )
            early = EarlyStop(cfg.patience, cfg.min_delta)
            how += f"; stop after {cfg.patience} epoch(s) without a {cfg.min_delta:.0%} better loss"
        reporter.note(f"early stopping on a validation loss: {how}")
    data.histories.clear()
    _, loader = session.windows([entry], {robot.task: stats}, context_len, cfg, train_histories)

    # -- surgery: the adaptation mode applied (a new group; what else trains, the mode says) ------
    meta = start.ckpt.meta
    extra_cfg: dict[str, Any] = {}
    if resume_from is None:
        seed_everything(cfg.seed)  # the new group's initial weights depend on the seed only
        extra_cfg = apply_mode(model, meta, robot, stats, job.choice, reporter)
    frozen = freeze(model, start.freeze, new_group=robot.group, patterns=start.patterns)
    # hashes taken while loading are those of these very tensors: no second pass over them
    before = start.saved.get("frozen_hashes") or frozen_fingerprint(
        model, known=start.ckpt.tensor_hashes
    )
    report = parameter_report(model)
    reporter.event("trainable", {"rows": report, "freeze": frozen.as_dict()})
    group_only = bool(frozen.trainable) and all(
        n.startswith(Vintix.group_prefixes(robot.group)) for n in frozen.trainable
    )
    save_format = _save_format(job, start, group_only, reporter)

    # -- fit -----------------------------------------------------------------------------------
    provenance = _provenance(job, robot, entry, files)
    recorded = {k: start.ckpt.config.extra[k] for k in provenance if k in start.ckpt.config.extra}
    config_json = cfg.config_json(
        context_len,
        {
            **{k: v for k, v in start.ckpt.config.extra.items() if k != "adaptkit_train"},
            "dataset_config_paths": [str(p) for p in job.dataset_config_paths],
            "pretrained_path": start.base.name,
            "freeze": start.freeze.value,
            "robot": robot.name,
            "adaptkit_mode": start.mode,
            **extra_cfg,
            # a resumed run keeps what its start recorded (the command that started it)
            **(recorded if resume_from is not None and recorded else provenance),
            **({"adaptkit_init": start.init} if start.init else {}),
        },
    )
    run_state = {
        "train_config": cfg.to_dict(),
        "freeze_mode": start.freeze.value,
        "freeze_patterns": list(start.patterns),
        "frozen_hashes": before,
        "base_fingerprint": start.base.fingerprint,
        "base_ref": {"name": start.base.name, "path": str(start.base.path or "")},
        "pretrained_path": start.base.name,
        "save_format": save_format,
        "kind": "finetune",
        "robot": robot.name,
        "mode": start.mode,
        "init": start.init,
    }

    def write_epoch(path: Path, m: torch.nn.Module, state: dict[str, Any]) -> Path:
        if save_format == SaveFormat.ADAPTER.value:
            return save_adapter(path, m, robot.group, meta, start.base, config_json, state)
        extra = None
        if group_only:  # the adapter files beside the full checkpoint: small, and mergeable
            acfg = adapter_config(m, robot.group, meta, start.base, config_json)
            extra = lambda tmp: write_adapter_files(tmp, m, acfg)  # noqa: E731
        return save_checkpoint(path, m, meta, config_json, state=state, extra=extra)

    loop = session.fit(
        model,
        loader,
        cfg,
        context_len,
        meta,
        config_json,
        run_state,
        groups=[robot.group],
        tasks=[robot.task],
        saved=start.saved if resume_from is not None else None,
        write_epoch=write_epoch,
        logged_config={**config_json, "trainable": frozen.as_dict()},
        val_loader=val_loader,
        early_stop=early,
    )
    if loop.early_stop is not None:
        reporter.note(loop.early_stop["reason"])

    # -- verify: the frozen tensors of the saved weights are bit-identical to the base ---------
    verified, detail = None, "nothing frozen (full fine-tune)"
    final = loop.checkpoints[-1] if loop.checkpoints else resume_from
    if before:
        verify_frozen(before, model)
        if info.is_main and final is not None and is_full(final):
            verify_frozen(before, load_state_dict_file(final / MODEL_FILE))
        verified = True
        detail = (
            f"{len(before)} frozen tensors (transformer, old groups, paddings) bit-identical "
            "to the base"
        )
    adapter = None
    if final is not None and all((final / f).is_file() for f in ADAPTER_FILES):
        if info.is_main:
            _verify_adapter(final, model, robot.group)
        adapter = final
    return session.result(
        loop,
        resume_from,
        trainable={"rows": report, "freeze": frozen.as_dict()},
        frozen_verified=verified,
        frozen_report=detail,
        adapter=adapter,
        robot=robot,
        token_order=model.config.token_order,
    )


def _data_robot(
    job: FinetuneJob, entry: DatasetEntry, files: list[Path], reporter: Reporter
) -> RobotSpec:
    """The robot in the observation layout its histories are in (the data's width, or the task
    JSON's record, selects it); `job.obs_layout`, when given, must agree."""
    robot, why = spec_for_data(job.robot, entry.path, files)
    layout = robot.obs_layout or "custom"
    if job.obs_layout is not None and layout != job.obs_layout:
        raise AdaptkitError(
            f"--obs-layout {job.obs_layout}: the histories of '{robot.task}' in {entry.path} "
            f"are {robot.obs_dim}-dim ({layout}; {why})"
        )
    if layout != (job.robot.plugin_spec.obs_layout or "custom") or job.obs_layout is not None:
        reporter.note(
            f"'{robot.name}' in observation layout {layout} ({robot.obs_dim} dims): {why}"
        )
    extra = [(p, *extra_observation_rows(p)) for p in files]
    forked = [(p, k, n) for p, k, n in extra if k]
    if forked:
        p, k, n = forked[0]
        reporter.note(
            f"{len(forked)} of {len(files)} histories in {entry.path} store one observation row "
            f"more than actions per chunk (e.g. {p.name}: {k} of {n} chunks; the quadruped "
            "fork's writer): each such chunk's last observation row is dropped so o_t pairs "
            "with a_t"
        )
    return robot


def _fresh(job: FinetuneJob, robot: RobotSpec, reporter: Reporter) -> _Start:
    """The base checkpoint (its token order settled), checked to be free of the robot's group
    and task, and the robot's stats when a file has them (None: the pre-flight computes them
    from the histories)."""
    ckpt = load_checkpoint(job.base_path, token_order=job.token_order)
    configs = (
        load_dataset_configs(job.dataset_config_paths, job.data_folder).values()
        if job.dataset_config_paths
        else ()
    )
    own = own_task_data(ckpt, job.data_folder, (robot, *job.known_robots), configs)
    order = settle_token_order(ckpt, own, reporter)
    if not order.settled:
        reporter.note(f"the fine-tune records token order {order.order} in its checkpoints")
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
        dims=GroupDims(robot.obs_dim, robot.action_dim),
    )
    weights = ckpt.model.state_dict().values()
    return _Start(
        ckpt=ckpt,
        robot=robot,
        cfg=job.train,
        mode=job.mode,
        freeze=job.freeze,
        patterns=job.choice.freeze_patterns(robot.group),
        stats=chosen,
        base=_base_ref(job, ckpt),
        base_bytes=sum(t.numel() * t.element_size() for t in weights),
        init=_init_record(job),
    )


def _base_ref(job: FinetuneJob, ckpt: Checkpoint) -> BaseRef:
    """The base as the run records it, portably: a shipped base by name + fingerprint
    (adaptkit:default@…), a Hub reference as given; a local path as given, with the folder it
    resolved to (the only one that is of this machine)."""
    shipped = portable_name(ckpt.path, ckpt.fingerprint)
    if shipped is not None:
        return BaseRef(ckpt.fingerprint, shipped)
    if parse_hub_ref(job.base_path) is not None or is_shipped_name(job.base_path):
        return BaseRef(ckpt.fingerprint, str(job.base_path))
    return BaseRef(ckpt.fingerprint, str(job.base_path), ckpt.path.resolve())


def _provenance(
    job: FinetuneJob, robot: RobotSpec, entry: DatasetEntry, files: list[Path]
) -> dict[str, Any]:
    """What the run records so that another machine can use and redo it: the robot, the plugin
    that provides it, the data's provenance and the command that started the run."""
    return {
        "robot_plugin": plugin_record(get_registry(), job.robot.name),
        "data": data_record(
            robot.task, entry.path, entry.raw_path, job.dataset_config_paths, files
        ),
        "command": job.command,  # None: started from Python, not the command line
    }


def _init_record(job: FinetuneJob) -> dict[str, Any]:
    """How the new group starts, as config.json's adaptkit_init records it: what was applied
    (an `auto` nothing probed starts fresh), what was asked, and the probe's figures if any."""
    choice, probed = job.choice, dict(job.init_record or {})
    applied = START_FRESH if choice.start == START_AUTO else choice.init
    return {**probed, "init": applied, "asked": probed.get("asked", choice.init)}


def _resume(session: Session, job: FinetuneJob, robot: RobotSpec, resume_from: Path) -> _Start:
    """The run's newest checkpoint; the run keeps its own settings, stats, base and order."""
    saved = load_training_state(resume_from) or {}
    if saved.get("kind") != "finetune" or "base_fingerprint" not in saved:
        raise AdaptkitError(
            f"cannot resume from {resume_from}: its state.pth is not a fine-tune's "
            "(no base fingerprint); resume it with the command that started it"
        )
    cfg = session.resumed(job.train, saved)
    ckpt = load_checkpoint(resume_from)
    if robot.group not in ckpt.model.groups or robot.task not in ckpt.meta:
        raise AdaptkitError(
            f"cannot resume from {resume_from}: it has no group '{robot.group}' / task "
            f"'{robot.task}' (was it a fine-tune of robot '{robot.name}'?)"
        )
    if ckpt.meta[robot.task].dims != GroupDims(robot.obs_dim, robot.action_dim):
        d = ckpt.meta[robot.task].dims
        raise AdaptkitError(
            f"cannot resume from {resume_from}: its task '{robot.task}' is {d.obs_dim}-dim, the "
            f"data in {job.data_folder} is {robot.obs_dim}-dim"
        )
    session.reporter.note(f"resuming from {resume_from}")
    ref = saved.get("base_ref") or {}
    return _Start(
        ckpt=ckpt,
        robot=robot,
        cfg=cfg,
        mode=str(saved.get("mode", job.mode)),
        freeze=FreezeMode(saved.get("freeze_mode", job.freeze)),
        patterns=tuple(saved.get("freeze_patterns", job.freeze_patterns)),
        stats=(ckpt.meta[robot.task].stats, f"checkpoint task '{robot.task}'"),
        base=BaseRef(
            saved["base_fingerprint"],
            str(ref.get("name") or saved.get("pretrained_path", job.base_path)),
            Path(ref["path"]) if ref.get("path") else None,
        ),
        base_bytes=None,
        saved=saved,
        init=saved.get("init"),
    )


def _save_format(job: FinetuneJob, start: _Start, group_only: bool, reporter: Reporter) -> str:
    """'adapter' or 'full' for every epoch of this run (a resumed run keeps its own)."""
    if start.saved.get("save_format"):
        return str(start.saved["save_format"])
    if job.save is SaveFormat.ADAPTER and not group_only:
        raise AdaptkitError(
            "--save adapter: an adapter holds only the new group, but this run also trains "
            "other weights (--freeze none or --freeze-pattern); use --save full"
        )
    if job.save is SaveFormat.AUTO:
        large = (start.base_bytes or 0) >= defaults.LARGE_MODEL_BYTES
        if not (group_only and large):
            return SaveFormat.FULL.value
        reporter.note(
            f"the base's weights are {start.base_bytes / 2**20:,.0f} MiB: each epoch saves the "
            f"new group as an adapter (--save full for whole checkpoints; `adaptkit merge` "
            "makes one from any epoch)"
        )
        return SaveFormat.ADAPTER.value
    return job.save.value


def _verify_adapter(path: Path, model: torch.nn.Module, group: str) -> None:
    """The adapter written holds exactly the trained group's live tensors."""
    _, tensors = read_adapter(path)
    live = fingerprint(model, list(tensors))
    if fingerprint(tensors) != live or set(tensors) != {
        k for k in model.state_dict() if k.startswith(Vintix.group_prefixes(group))
    }:
        raise AdaptkitError(f"adapter {path}: its tensors differ from the trained group {group!r}")
