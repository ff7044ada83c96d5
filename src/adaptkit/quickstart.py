"""Built-in defaults that make `adaptkit finetune ROBOT` work on a fresh machine.

When the base model or the robot's learning histories are missing and the caller did not name
them, they are produced here with adaptkit's own `collect` and `pretrain` (the recipe below), and
cached where the defaults point (`models/base`, `data/<robot>_trajectories`), so the next run
starts straight at fine-tuning. `adapt()` is the whole story as one library call: base →
data → add group + freeze + fine-tune → zero-shot vs fine-tuned vs demonstrator.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from adaptkit import __version__
from adaptkit.errors import AdaptkitError
from adaptkit.robot import RobotSpec

Note = Callable[[str], None]
CollectProgress = Callable[[str, int], Callable[[int], None]]  # (label, total) -> advance(k)
EvalProgress = Callable[[str], Any]  # label -> per-run callback(step, total) or None
DEFAULT_DATA_DIR = Path("data")
BUILD_MARKER = "quickstart.json"  # written into a base model folder this module builds


@dataclass(frozen=True)
class Recipe:
    """Sizes of everything the defaults build; fits a 2-core CPU in minutes."""

    base_robots: tuple[str, ...] = ("go1", "go2", "a1")
    histories: int = 8  # learning histories per robot
    steps_per_history: int = 15_000  # 15 episodes of 1000 steps, noise decaying over them
    collect_envs: int = 8
    collect_seed: int = 0
    pretrain_epochs: int = 3
    pretrain_lr: float = 3e-4
    batch_size: int = 32
    precision: str = "bf16"
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides ({}: default)
    finetune_epochs: int = 10
    eval_envs: int = 16
    eval_episodes: int = 3
    eval_seed: int = 777  # never used to collect training data
    episode_length: int = 1000

    @classmethod
    def tiny(cls) -> Recipe:
        """Seconds instead of minutes: the same pipeline at toy sizes, for CI."""
        return cls(
            base_robots=("go1",),
            histories=2,
            steps_per_history=300,
            collect_envs=2,
            pretrain_epochs=1,
            batch_size=8,
            precision="fp32",
            model={
                "observation_emb_dim": 16,
                "action_emb_dim": 8,
                "reward_emb_dim": 8,
                "hidden_dim": 32,
                "transformer_depth": 1,
                "transformer_heads": 2,
                "intermediate_size": 64,
                "context_len": 32,
            },
            finetune_epochs=1,
            eval_envs=2,
            eval_episodes=2,
            episode_length=100,
        )


@dataclass
class AdaptResult:
    finetune: Any  # adaptkit.train.RunResult
    compare: Any | None  # adaptkit.evaluate.CompareReport
    base: Path
    notes: list[str]


def _say(note: Note | None, notes: list[str], message: str) -> None:
    notes.append(message)
    if note is not None:
        note(message)


def robot_data_folder(spec: RobotSpec, data_dir: Path | str) -> Path:
    return Path(data_dir) / spec.data_path


def has_data(spec: RobotSpec, data_dir: Path | str) -> bool:
    """True when the robot's folder holds histories and the task JSON `collect` writes last."""
    from adaptkit.data.history import list_history_files, read_task_metadata

    folder = robot_data_folder(spec, data_dir)
    if not folder.is_dir() or read_task_metadata(folder) is None:
        return False  # `collect` writes the task JSON last: without it the folder is partial
    try:
        return bool(list_history_files(folder))
    except AdaptkitError:  # e.g. only the hidden temp file of a killed first history
        return False


def ensure_robot_data(
    spec: RobotSpec,
    data_dir: Path | str,
    recipe: Recipe = Recipe(),
    progress: CollectProgress | None = None,
    note: Note | None = None,
    notes: list[str] | None = None,
) -> bool:
    """Collect the robot's learning histories unless they are there. True if it collected."""
    from adaptkit.sim.collect import collect_histories

    notes = [] if notes is None else notes
    if has_data(spec, data_dir):
        return False
    folder = robot_data_folder(spec, data_dir)
    if spec.mjcf is None:
        raise AdaptkitError(
            f"robot {spec.name!r}: no learning histories in {folder} and its plugin declares no "
            "simulator to collect them; pass --dataset-config-paths"
        )
    total = recipe.histories * recipe.steps_per_history
    _say(
        note,
        notes,
        f"no learning histories for {spec.name} in {folder}: collecting {recipe.histories} × "
        f"{recipe.steps_per_history:,} steps with its demonstrator (cached there)",
    )
    collect_histories(
        spec,
        folder,
        recipe.histories,
        recipe.steps_per_history,
        recipe.collect_envs,
        recipe.collect_seed,
        progress=progress(f"collect {spec.name}", total) if progress else None,
        episode_length=recipe.episode_length,
    )
    return True


def write_base_dataset_config(
    specs: Sequence[RobotSpec], data_dir: Path | str, name: str = "base_pretrain_config.yaml"
) -> Path:
    """A dataset config with just the base robots (the collected one also lists the new robot)."""
    from adaptkit.data.config import write_dataset_config

    path = Path(data_dir) / name
    entries: dict[str, Any] = {}
    for spec in specs:
        entries.update(spec.dataset_entry())
    write_dataset_config(path, entries)
    return path


def data_fingerprint(folders: Sequence[Path]) -> str:
    """sha256 over every history file's bytes, in a stable order: what the base was trained on."""
    from adaptkit.data.history import list_history_files

    h = hashlib.sha256()
    for folder in folders:
        for path in list_history_files(folder):
            h.update(path.name.encode())
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def _read_marker(base: Path) -> dict[str, Any] | None:
    try:
        return json.loads((base / BUILD_MARKER).read_text())
    except (OSError, ValueError):
        return None


def _write_marker(base: Path, info: dict[str, Any]) -> None:
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".{BUILD_MARKER}.tmp"
    tmp.write_text(json.dumps(info, indent=2, default=str))
    os.replace(tmp, base / BUILD_MARKER)


def ensure_base_model(
    base: Path | str,
    data_dir: Path | str,
    recipe: Recipe = Recipe(),
    train_progress: Any = None,
    collect_progress: CollectProgress | None = None,
    note: Note | None = None,
    notes: list[str] | None = None,
    device: str | None = None,
) -> Path:
    """The base model at `base` (a run folder); built from the recipe's robots if missing.

    A build interrupted earlier resumes from its newest complete epoch. The folder gets a
    `quickstart.json` with the recipe, command, data fingerprint and adaptkit version.
    """
    from adaptkit.checkpoint import latest_checkpoint
    from adaptkit.model import ModelConfig
    from adaptkit.plugins import get_registry
    from adaptkit.train import TrainConfig, pretrain

    notes = [] if notes is None else notes
    base = Path(base)
    marker = _read_marker(base)
    if latest_checkpoint(base) is not None and (marker is None or marker.get("complete")):
        return base
    if base.exists() and marker is None:
        raise AdaptkitError(
            f"base model {base}: the folder exists but holds no complete checkpoint; "
            "remove it or pass --pretrained-path"
        )
    registry = get_registry()
    specs = [registry.robot(name) for name in recipe.base_robots]
    resume = marker is not None
    _say(
        note,
        notes,
        f"{'resuming the build of' if resume else 'no base model at'} {base}: "
        f"{'' if resume else 'building one '}from {', '.join(recipe.base_robots)} "
        "(collect → pretrain; cached for next time)",
    )
    for spec in specs:
        ensure_robot_data(spec, data_dir, recipe, collect_progress, note, notes)
    config_path = write_base_dataset_config(specs, data_dir)
    info = {
        "complete": False,
        "recipe": asdict(recipe),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "adaptkit": __version__,
        "dataset_config": str(config_path),
        "data_sha256": data_fingerprint([robot_data_folder(s, data_dir) for s in specs]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _write_marker(base, {**(marker or {}), **info})
    model_config = ModelConfig.from_dict({**ModelConfig().to_dict(), **recipe.model})
    result = pretrain(
        [config_path],
        data_dir=data_dir,
        name=base.name,
        save_dir=base.parent,
        model_config=model_config,
        train_config=TrainConfig(
            epochs=recipe.pretrain_epochs,
            lr=recipe.pretrain_lr,
            batch_size=recipe.batch_size,
            precision=recipe.precision,
            seed=recipe.collect_seed,
        ),
        resume=resume,
        device=device,
        progress=train_progress,
    )
    _write_marker(
        base,
        {**info, "complete": True, "final_loss": result.final_loss, "seconds": result.seconds},
    )
    return base


def adapt(
    robot: str | RobotSpec,
    pretrained_path: Path | str | None = None,
    dataset_config_paths: Sequence[str | Path] | None = None,
    data_dir: Path | str | None = None,
    save_dir: Path | str = "models",
    name: str | None = None,
    freeze_mode: str = "transformer",
    freeze_patterns: Sequence[str] | None = None,
    train_options: dict[str, Any] | None = None,
    resume: bool = False,
    stats_path: Path | str | None = None,
    device: str | None = None,
    evaluate: bool = True,
    eval_envs: int | None = None,
    eval_episodes: int | None = None,
    eval_seed: int | None = None,
    recipe: Recipe = Recipe(),
    train_progress: Any = None,
    collect_progress: CollectProgress | None = None,
    eval_progress: EvalProgress | None = None,
    note: Note | None = None,
) -> AdaptResult:
    """Fine-tune `robot` as a new group of a pretrained model, then compare it with zero-shot.

    Missing defaults are built (see module docstring); anything the caller names explicitly
    must exist (`data_dir=None` means `data/`, created if needed). `train_options` holds the
    TrainConfig fields the caller set; the rest come from the recipe (epochs, bf16) and the
    seed's fine-tune defaults. Returns the training result and the comparison (zero-shot,
    fine-tuned, demonstrator, standing still) on held-out seeds.
    """
    from adaptkit.evaluate import compare
    from adaptkit.plugins import get_registry
    from adaptkit.train import TrainConfig, finetune

    spec = robot if isinstance(robot, RobotSpec) else get_registry().robot(robot)
    notes: list[str] = []
    # A data dir named by the caller must exist (a typo should not start a long collection);
    # the default one is created and filled on first use.
    if data_dir is not None and not Path(data_dir).is_dir():
        raise AdaptkitError(f"--data-dir {data_dir}: does not exist")
    save_dir, data_dir = Path(save_dir), Path(data_dir or DEFAULT_DATA_DIR)
    if pretrained_path is None:
        base = ensure_base_model(
            save_dir / "base", data_dir, recipe, train_progress, collect_progress, note, notes,
            device,
        )  # fmt: skip
    else:
        base = Path(pretrained_path)
    if not dataset_config_paths:
        ensure_robot_data(spec, data_dir, recipe, collect_progress, note, notes)
    # The caller's options win over the recipe's (epochs, precision).
    defaults = {"epochs": recipe.finetune_epochs, "precision": recipe.precision}
    cfg = TrainConfig.for_finetune(freeze_mode, **{**defaults, **(train_options or {})})
    result = finetune(
        spec,
        pretrained_path=base,
        dataset_config_paths=dataset_config_paths,
        data_dir=data_dir,
        name=name,
        save_dir=save_dir,
        freeze_mode=freeze_mode,
        freeze_patterns=freeze_patterns,
        train_config=cfg,
        resume=resume,
        stats_path=stats_path,
        device=device,
        progress=train_progress,
    )
    report = None
    if evaluate and result.last_checkpoint is not None:
        report = compare(
            spec,
            [("zero-shot", base), ("fine-tuned", result.last_checkpoint)],
            num_envs=eval_envs or recipe.eval_envs,
            episodes=eval_episodes or recipe.eval_episodes,
            seed=recipe.eval_seed if eval_seed is None else eval_seed,
            out_dir=result.run_dir / "compare",
            data_dir=data_dir,
            episode_length=recipe.episode_length,
            progress=eval_progress,
        )
    return AdaptResult(finetune=result, compare=report, base=base, notes=notes)
