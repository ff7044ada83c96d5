"""Pieces shared by pretrain and finetune: run dirs, stats, data, checkpoint writing, resume."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from adaptkit.checkpoint import (
    STATE_FILE,
    epoch_dir,
    latest_checkpoint,
    save_checkpoint,
)
from adaptkit.data.config import DatasetEntry
from adaptkit.data.history import list_history_files
from adaptkit.data.stats import compute_stats, load_stats
from adaptkit.data.windows import WindowDataset, make_loader
from adaptkit.errors import AdaptkitError
from adaptkit.model import GroupDims, ModelConfig
from adaptkit.train.config import RunResult, TrainConfig
from adaptkit.train.loop import Progress, Trainer, seed_everything

STATS_FILE = "stats.json"


def emit(progress: Progress | None, event: str, **data: Any) -> None:
    if progress is not None:
        progress(event, data)


def note(progress: Progress | None, notes: list[str], message: str) -> None:
    notes.append(message)
    emit(progress, "note", message=message)


# -- model config --------------------------------------------------------------------------------
def load_model_config(source: ModelConfig | Mapping[str, Any] | str | Path | None) -> ModelConfig:
    """A ModelConfig from an object, a dict, or a YAML/JSON file; None: the small default."""
    if source is None:
        return ModelConfig()
    if isinstance(source, ModelConfig):
        return source
    if isinstance(source, Mapping):
        return ModelConfig.from_dict(dict(source))
    path = Path(source)
    if not path.is_file():
        raise AdaptkitError(f"model config {path}: file not found")
    try:
        raw = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        raise AdaptkitError(f"model config {path}: not valid YAML/JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise AdaptkitError(f"model config {path}: expected a mapping of config keys")
    try:
        return ModelConfig.from_dict(raw)
    except (AdaptkitError, TypeError) as exc:
        raise AdaptkitError(f"model config {path}: {exc}") from None


# -- run dirs ------------------------------------------------------------------------------------
def prepare_run_dir(run_dir: Path, resume: bool, is_main: bool) -> Path | None:
    """The checkpoint to resume from, or None for a fresh run; never clobbers a finished run."""
    latest = latest_checkpoint(run_dir)
    if latest is not None and not resume:
        raise AdaptkitError(
            f"{run_dir} already holds checkpoints (newest {latest.name}); pass --resume to "
            "continue that run, or choose another --name"
        )
    if resume and latest is not None and not (latest / STATE_FILE).is_file():
        raise AdaptkitError(f"cannot resume from {latest}: it has no state.pth")
    if is_main and run_dir.is_dir():
        # leftovers of a save that was killed half-way; never a complete checkpoint
        for tmp in run_dir.glob(".*_epoch.tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
    return latest if resume else None


# -- data ----------------------------------------------------------------------------------------
def check_data(entry: DatasetEntry, hint: str = "") -> list[Path]:
    if not entry.path.is_dir():
        raise AdaptkitError(f"no data for task '{entry.task}': {entry.path} does not exist{hint}")
    files = list_history_files(entry.path)
    if not files:
        raise AdaptkitError(
            f"no learning histories (*.h5) for task '{entry.task}' in {entry.path}{hint}"
        )
    return files


def check_stats(task: str, stats: Mapping[str, Any], dims: GroupDims | None = None) -> None:
    """Pre-flight: finite values, positive stds, lengths matching the dims."""
    for key in ("obs_mean", "obs_std", "acs_mean", "acs_std"):
        values = stats.get(key)
        if not isinstance(values, list | tuple) or not values:
            raise AdaptkitError(f"stats of task '{task}': '{key}' missing or empty")
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            raise AdaptkitError(f"stats of task '{task}': '{key}' has NaN/inf or non-numbers")
    if min(stats["obs_std"]) <= 0:
        raise AdaptkitError(f"stats of task '{task}': obs_std must be > 0 (would divide by ~0)")
    if dims is not None:
        if len(stats["obs_mean"]) != dims.obs_dim or len(stats["obs_std"]) != dims.obs_dim:
            raise AdaptkitError(
                f"stats of task '{task}' have {len(stats['obs_mean'])} obs dims, "
                f"the data/robot have {dims.obs_dim}"
            )
        if len(stats["acs_mean"]) != dims.act_dim:
            raise AdaptkitError(
                f"stats of task '{task}' have {len(stats['acs_mean'])} action dims, "
                f"the data/robot have {dims.act_dim}"
            )


def resolve_stats(
    entry: DatasetEntry,
    files: Sequence[Path],
    candidates: Sequence[Path | None],
) -> tuple[dict[str, Any], str]:
    """The first stats file among `candidates` that has the task, else computed from the data.

    Returns (stats, where-from) so callers can say which.
    """
    for path in candidates:
        if path is not None and Path(path).is_file():
            loaded = load_stats(path)
            if entry.task in loaded:
                return dict(loaded[entry.task]), str(path)
    return compute_stats(files), "computed"


def data_dims(dataset: WindowDataset) -> dict[str, GroupDims]:
    """task -> dims, as found in the histories."""
    return {t.task: GroupDims(int(t.obs.shape[1]), int(t.action.shape[1])) for t in dataset.tasks}


def build_loader(
    entries: Sequence[DatasetEntry],
    stats: Mapping[str, Mapping[str, Any]],
    context_len: int,
    cfg: TrainConfig,
    rank: int,
    world_size: int,
) -> tuple[WindowDataset, torch.utils.data.DataLoader, int]:
    stride = cfg.trajectory_sparsity or max(1, context_len // 4)
    dataset = WindowDataset(list(entries), stats, context_len, stride)
    # drop_last: equal batch sizes make the per-batch means average to the global-batch mean,
    # and every rank gets the same number of batches (DDP needs lock-step)
    loader = make_loader(
        dataset,
        cfg.batch_size,
        shuffle=cfg.shuffle,
        seed=cfg.seed,
        drop_last=True,
        rank=rank,
        world_size=world_size,
        num_workers=cfg.num_workers,
    )
    return dataset, loader, stride


def needs_find_unused(model: nn.Module, data_groups: Sequence[str]) -> bool:
    """DDP must look for unused params when a single-group batch can leave trainable ones idle."""
    trainable_groups = {
        g
        for g in model.groups
        if any(p.requires_grad for m in model.group_modules(g) for p in m.parameters())
    }
    return len(trainable_groups) > 1 or not trainable_groups <= set(data_groups)


# -- checkpoints ---------------------------------------------------------------------------------
def training_config_json(
    cfg: TrainConfig, context_len: int, stride: int, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """config.json's training keys, as the reference spells them, plus adaptkit's own."""
    out = dict(extra)
    out.update(cfg.reference_keys(context_len, stride))
    out["adaptkit_train"] = cfg.to_dict()
    return json.loads(json.dumps(out, default=str))


def make_saver(
    save_dir: Path,
    name: str,
    metadata: dict[str, Any],
    config_json: dict[str, Any],
    run_state: dict[str, Any],
    after_save=None,
):
    """save(model, epoch, trainer_state) for the Trainer: one atomic NNNN_epoch dir."""

    def save(model: nn.Module, epoch: int, trainer_state: dict[str, Any]) -> Path:
        path = epoch_dir(save_dir, name, epoch)
        state = {**trainer_state, **run_state}
        save_checkpoint(path, model, metadata, config_json, state=state)
        if after_save is not None:
            after_save(model, path)
        return path

    return save


def resume_settings(
    saved: Mapping[str, Any], given: TrainConfig, notes: list[str], progress: Progress | None
) -> TrainConfig:
    """A resumed run keeps the settings it started with (else it could not end where an
    uninterrupted run ends); say which given values were ignored."""
    cfg = TrainConfig.from_dict(dict(saved))
    diff = [
        f"{k}={v!r} (run: {getattr(cfg, k)!r})"
        for k, v in given.to_dict().items()
        if (list(v) if isinstance(v, tuple) else v) != cfg.to_dict().get(k)
    ]
    if diff:
        note(progress, notes, "resuming with the run's own settings; ignored " + ", ".join(diff))
    return cfg


def fit(
    trainer: Trainer, cfg: TrainConfig, resume_from: Path | None, saved: Any
) -> tuple[list[Path], Any]:
    """Restore the trainer (resume) or seed it and write 0000_epoch, then train.

    Returns every checkpoint written and the trainer's fit result.
    """
    checkpoints: list[Path] = []
    if resume_from is not None:
        trainer.load_state_dict(saved)
        trainer.truncate_metrics()
    else:
        seed_everything(cfg.seed)  # same RNG stream whether or not 0000_epoch is written
        if cfg.save_initial:
            path = trainer.save_initial()
            checkpoints += [path] if path else []
    result = trainer.fit()
    return checkpoints + result.checkpoints, result


def run_result(
    run_dir: Path,
    checkpoints: list[Path],
    result: Any,
    seconds: float,
    resumed_from: Path | None,
    **extra: Any,
) -> RunResult:
    """The RunResult both commands return, from the trainer's fit result."""
    return RunResult(
        run_dir=run_dir,
        checkpoints=checkpoints,
        final_loss=result.epoch_losses[-1] if result.epoch_losses else None,
        epoch_losses=result.epoch_losses,
        steps=result.steps,
        tokens=result.tokens,
        seconds=seconds,
        tokens_per_s=result.tokens / max(result.seconds, 1e-9),
        resumed_from=resumed_from,
        **extra,
    )
