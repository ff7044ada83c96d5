"""Build what the main job and the study need and the user did not name: a robot's learning
histories (collected with its demonstrator) and a base model (pretrained on the recipe's robots),
cached where the defaults point (`data/<robot>_trajectories`, `models/base`) with a
`provenance.json` (recipe, command, data fingerprint, adaptkit version) in the base's folder.

The `Recipe` holds the sizes of everything built; under torchrun rank 0 builds while the other
ranks wait (`build_on_rank_zero`).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from adaptkit import defaults
from adaptkit.ckpt.checkpoint import checkpoint_fingerprint
from adaptkit.ckpt.config_file import read_model_config
from adaptkit.ckpt.layout import REQUIRED_FILES, latest_checkpoint
from adaptkit.data.config import write_dataset_config
from adaptkit.data.dataset_folder import COLLECTED_NAME
from adaptkit.data.history import list_history_files, read_task_metadata, task_metadata_path
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate import EvalSettings, ModelPolicy, evaluate_policy
from adaptkit.execute import Job
from adaptkit.fileio import atomic_dir, read_json, write_json
from adaptkit.plugins import Registry, worker_registry
from adaptkit.progress import SILENT, Reporter
from adaptkit.robot import RobotSpec
from adaptkit.sim.collect import collect_histories
from adaptkit.tasks import DEFAULT_TASK
from adaptkit.train import TrainConfig, pretrain
from adaptkit.train import distributed as dd
from adaptkit.version import __version__

BUILD_MARKER = "provenance.json"  # written into a base model folder this module builds
# The default recipe's base, shipped inside the package (rebuilt by `adaptkit build-base --ship`):
# the main job adapts from it instead of rebuilding it on every fresh machine.
SHIPPED_BASE = Path(__file__).resolve().parent / "bases" / "default"
# the shipped base's recorded check: its zero-shot return on one of its own robots, re-run by a test
SHIP_CHECK = {"robot": "go1", "num_envs": 2, "max_steps": 150, "seed": 777}
BUILD_FAILED = ".defaults-build-failed"  # under torchrun: rank 0 tells the waiting ranks it failed
WAIT_POLL_S = 1.0
# a model small enough for seconds-long pipeline runs (CI; the study's `ci` preset)
TINY_MODEL: dict[str, Any] = {
    "observation_emb_dim": 16,
    "action_emb_dim": 8,
    "reward_emb_dim": 8,
    "hidden_dim": 32,
    "transformer_depth": 1,
    "transformer_heads": 2,
    "intermediate_size": 64,
    "context_len": 32,
}


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
    precision: str = "auto"  # bf16 where the device computes it natively, else fp32
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides ({}: default)
    finetune_epochs: int = defaults.FINETUNE_EPOCHS
    eval_envs: int = defaults.NUM_ENVS
    eval_episodes: int = defaults.EPISODES
    eval_seed: int = defaults.HELD_OUT_SEED  # never used to collect training data
    episode_length: int = 1000
    # 0: SPEC's schedule (noise falls over a whole history); C: it falls over each C episodes
    # (adaptkit.sim.collect), so one window of a short-episode history shows improvement
    noise_cycle: int = 0
    task: str = (
        DEFAULT_TASK  # the task variant the data are collected and evaluated on (adaptkit.tasks)
    )

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
            model=dict(TINY_MODEL),
            finetune_epochs=1,
            eval_envs=2,
            eval_episodes=2,
            episode_length=100,
        )

    @classmethod
    def named(cls, name: str) -> Recipe:
        recipes = {"default": cls, "tiny": cls.tiny}
        if name not in recipes:
            raise AdaptkitError(f"--recipe: expected one of {', '.join(recipes)}, got {name!r}")
        return recipes[name]()

    def eval_settings(self, **given: Any) -> EvalSettings:
        """The comparison after a fine-tune: held-out seed, the recipe's envs and episodes."""
        base = {
            "num_envs": self.eval_envs,
            "episodes": self.eval_episodes,
            "seed": self.eval_seed,
            "episode_length": self.episode_length,
            "task": self.task,
        }
        return EvalSettings(**{**base, **{k: v for k, v in given.items() if v is not None}})


def robot_data_folder(spec: RobotSpec, data_dir: Path | str) -> Path:
    return Path(data_dir) / spec.data_path


def has_data(spec: RobotSpec, data_dir: Path | str) -> bool:
    """True when the robot's folder holds histories to train on: a finished collection (with
    the task JSON `collect` writes last) or files adaptkit did not name (the user's own data,
    which is never collected into). Only collect-named files without the JSON are a collection
    killed half-way: collected again."""
    folder = robot_data_folder(spec, data_dir)
    if not folder.is_dir():
        return False
    try:
        files = list_history_files(folder)
    except AdaptkitError:  # e.g. only the hidden temp file of a killed first history
        return False
    if read_task_metadata(folder) is not None:
        return True
    return any(not COLLECTED_NAME.match(p.name) for p in files)


def ensure_robot_data(
    spec: RobotSpec,
    data_dir: Path | str,
    recipe: Recipe = Recipe(),
    reporter: Reporter = SILENT,
) -> bool:
    """Collect the robot's learning histories unless they are there (collected for the recipe's
    task: histories of another task are an error, not silently reused). True if it collected."""
    folder = robot_data_folder(spec, data_dir)
    if has_data(spec, data_dir):
        collector = (read_task_metadata(folder) or {}).get("collector")
        if isinstance(collector, dict):  # histories adaptkit collected: of the recipe's task?
            recorded = collector.get("task", DEFAULT_TASK)
            if recorded != recipe.task:
                raise AdaptkitError(
                    f"{folder}: holds histories of task {recorded!r}, this run needs task "
                    f"{recipe.task!r}; use another data folder"
                )
        return False
    if spec.mjcf is None:
        raise AdaptkitError(
            f"robot {spec.name!r}: no learning histories in {folder} and its plugin declares no "
            "simulator to collect them; pass --dataset-config-paths"
        )
    total = recipe.histories * recipe.steps_per_history
    reporter.note(
        f"no learning histories for {spec.name} in {folder}: collecting {recipe.histories} × "
        f"{recipe.steps_per_history:,} steps with its demonstrator (cached there)"
    )
    collect_histories(
        spec,
        folder,
        recipe.histories,
        recipe.steps_per_history,
        recipe.collect_envs,
        recipe.collect_seed,
        progress=reporter.collecting(f"collect {spec.name}", total),
        episode_length=recipe.episode_length,
        task=recipe.task,
        noise_cycle=recipe.noise_cycle,
    )
    return True


def collect_robot_data(robot: str, data_dir: str, recipe: Recipe, plugin_files: list[str]) -> None:
    """`ensure_robot_data` as a job function (adaptkit.execute): module-level, picklable."""
    ensure_robot_data(worker_registry(plugin_files).robot(robot), data_dir, recipe)


def collection_job(
    spec: RobotSpec,
    data_dir: Path | str,
    recipe: Recipe = Recipe(),
    plugin_files: Sequence[str] = (),
) -> Job:
    """The robot's collection as a job for `adaptkit.execute.run_jobs` (one per robot: the
    simulations are independent); done when the task JSON `collect` writes last is there. The
    worker finds the robot by name (`plugin_files`: the caller's, adaptkit.plugins.plugin_files)."""
    folder = robot_data_folder(spec, data_dir)
    return Job(
        id=f"collect-{spec.name}",
        done=task_metadata_path(folder),
        fn=collect_robot_data,
        kwargs={
            "robot": spec.name,
            "data_dir": str(data_dir),
            "recipe": recipe,
            "plugin_files": list(plugin_files),
        },
    )


def write_base_dataset_config(
    specs: Sequence[RobotSpec], data_dir: Path | str, name: str = "base_pretrain_config.yaml"
) -> Path:
    """A dataset config with just the base robots (the collected one also lists the new robot)."""
    path = Path(data_dir) / name
    entries: dict[str, Any] = {}
    for spec in specs:
        entries.update(spec.dataset_entry())
    write_dataset_config(path, entries)
    return path


def base_config_name(robots: Sequence[str]) -> str:
    """The dataset config file of a base built from `robots`: one per robot set, so bases of
    different sets (e.g. a leave-one-out study's) built from one data folder never share one."""
    if tuple(robots) == Recipe().base_robots:
        return "base_pretrain_config.yaml"  # the main job's, as before
    return "base_" + "+".join(sorted(robots)) + ".yaml"


def data_fingerprint(folders: Sequence[Path]) -> str:
    """sha256 over every history file's bytes, in a stable order: what the base was trained on."""
    h = hashlib.sha256()
    for folder in folders:
        for path in list_history_files(folder):
            h.update(path.name.encode())
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def read_provenance(base: Path) -> dict[str, Any] | None:
    """The provenance.json of a base this module built (None: none, or unreadable)."""
    try:
        return read_json(base / BUILD_MARKER)
    except AdaptkitError:
        return None


def write_provenance(base: Path, info: dict[str, Any]) -> None:
    write_json(base / BUILD_MARKER, info, "provenance")


# the recipe fields a base depends on (not the fine-tune's epochs or the evaluation's settings)
BASE_FIELDS = (
    "base_robots", "histories", "steps_per_history", "collect_envs", "collect_seed",
    "pretrain_epochs", "pretrain_lr", "batch_size", "precision", "model", "episode_length",
    "noise_cycle", "task",
)  # fmt: skip


def recipe_matches(recorded: Any, recipe: Recipe) -> bool:
    """True when a provenance's recorded recipe builds the same base as `recipe` (fields added
    since it was recorded count as their defaults)."""
    if not isinstance(recorded, dict):
        return False
    now = json.loads(json.dumps(asdict(recipe)))
    was = {**json.loads(json.dumps(asdict(Recipe()))), **recorded}
    return all(was.get(k) == now[k] for k in BASE_FIELDS)


def shipped_base(recipe: Recipe, folder: Path = SHIPPED_BASE) -> Path | None:
    """The shipped base when it was built from `recipe` (None: not shipped, or another recipe)."""
    info = read_provenance(folder)
    if info is None or latest_checkpoint(folder) is None:
        return None
    return folder if recipe_matches(info.get("recipe"), recipe) else None


def default_base(save_dir: Path | str, recipe: Recipe) -> Path:
    """The main job's base when none is named: one built (or being built) in SAVE_DIR/base, else
    the shipped one when `recipe` is its recipe, else SAVE_DIR/base, to build."""
    own = Path(save_dir) / "base"
    if own.exists():
        return own
    return shipped_base(recipe) or own


def ship_check(base: Path | str, registry: Registry) -> dict[str, Any]:
    """The shipped base's check: zero-shot on SHIP_CHECK's robot, its mean return."""
    c = SHIP_CHECK
    settings = EvalSettings(
        num_envs=c["num_envs"], episodes=None, max_steps=c["max_steps"], seed=c["seed"],
        device="cpu", threads=1,
    )  # fmt: skip
    policy = ModelPolicy.from_checkpoint(Path(base), registry.robot(c["robot"]), settings)
    try:
        summary = evaluate_policy(policy, policy.robot, settings, label="check").summary
    finally:
        policy.close()
    return {**c, "mean_return": summary["mean_return"]}


def check_shippable(recipe: Recipe, dest: Path = SHIPPED_BASE) -> None:
    """Only the default recipe's base ships, and only into a source checkout (never into an
    installed package's site-packages)."""
    if not recipe_matches(json.loads(json.dumps(asdict(recipe))), Recipe()):
        raise AdaptkitError("--ship: only a base of the default recipe ships (--recipe default)")
    if not (dest.parents[3] / "pyproject.toml").is_file():
        raise AdaptkitError(
            f"--ship: {dest} is not in a source checkout of adaptkit; ship from one "
            "(git clone, pip install -e .)"
        )


def ship_base(built: Path | str, registry: Registry, dest: Path = SHIPPED_BASE) -> Path:
    """Copy a finished base's newest checkpoint (weights, metadata, config: no optimiser state)
    and its provenance into `dest`, with the weights' fingerprint and the check's score; the
    folder is replaced as a whole."""
    built = Path(built)
    info, newest = read_provenance(built), latest_checkpoint(built)
    if info is None or not info.get("complete") or newest is None:
        raise AdaptkitError(f"{built}: not a finished base built by adaptkit (no provenance)")
    with atomic_dir(dest, "shipped base") as tmp:
        (tmp / newest.name).mkdir()
        for name in REQUIRED_FILES:  # no optimiser state
            (tmp / newest.name / name).write_bytes((newest / name).read_bytes())
        shipped = {
            **info,
            "shipped_from": newest.name,
            "fingerprint": checkpoint_fingerprint(tmp / newest.name),
            "check": ship_check(tmp, registry),
        }
        write_provenance(tmp, shipped)
    return dest


def base_is_built(base: Path | str) -> bool:
    """A checkpoint is there and, if this module built it, the build finished."""
    marker = read_provenance(Path(base))
    return latest_checkpoint(Path(base)) is not None and (marker is None or marker.get("complete"))


def ensure_base_model(
    base: Path | str,
    data_dir: Path | str,
    registry: Registry,
    recipe: Recipe = Recipe(),
    reporter: Reporter = SILENT,
    device: str | None = None,
) -> Path:
    """The base model at `base` (a run folder); built from the recipe's robots if missing.

    A build interrupted earlier resumes from its newest complete epoch. The folder gets a
    `provenance.json` with the recipe, command, data fingerprint and adaptkit version.
    """
    base = Path(base)
    marker = read_provenance(base)
    if base_is_built(base):
        return base
    if base.exists() and marker is None:
        raise AdaptkitError(
            f"base model {base}: the folder exists but holds no complete checkpoint; "
            "remove it or pass --pretrained-path"
        )
    specs = [registry.robot(name) for name in recipe.base_robots]
    resume = marker is not None
    reporter.note(
        f"{'resuming the build of' if resume else 'no base model at'} {base}: "
        f"{'' if resume else 'building one '}from {', '.join(recipe.base_robots)} "
        "(collect → pretrain; cached for next time)"
    )
    for spec in specs:
        ensure_robot_data(spec, data_dir, recipe, reporter)
    config_path = write_base_dataset_config(specs, data_dir, base_config_name(recipe.base_robots))
    info = {
        "complete": False,
        "recipe": asdict(recipe),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "adaptkit": __version__,
        "dataset_config": str(config_path),
        "data_sha256": data_fingerprint([robot_data_folder(s, data_dir) for s in specs]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_provenance(base, {**(marker or {}), **info})
    result = pretrain(
        [config_path],
        data_dir=data_dir,
        name=base.name,
        save_dir=base.parent,
        model_config=read_model_config(recipe.model),
        train_config=TrainConfig(
            epochs=recipe.pretrain_epochs,
            lr=recipe.pretrain_lr,
            batch_size=recipe.batch_size,
            precision=recipe.precision,
            seed=recipe.collect_seed,
        ),
        resume=resume,
        device=device,
        reporter=reporter,
        registry=registry,
    )
    write_provenance(
        base,
        {**info, "complete": True, "final_loss": result.final_loss, "seconds": result.seconds},
    )
    return base


def build_on_rank_zero(
    build: Callable[[], None], ready: Callable[[], bool], failed_flag: Path, rank: int
) -> None:
    """Under torchrun: rank 0 builds what is missing as a one-process job while the other ranks
    wait until `ready()` (polling files, not a collective: a build can outlast any collective's
    timeout, and no process group exists yet). A failure on rank 0 is written to `failed_flag`,
    so the waiting ranks stop with its message instead of waiting forever."""
    started = time.time()
    if rank == 0:
        try:
            with dd.solo():
                build()
        except BaseException as exc:
            failed_flag.parent.mkdir(parents=True, exist_ok=True)
            failed_flag.write_text(f"{type(exc).__name__}: {exc}")
            raise
        failed_flag.unlink(missing_ok=True)
        return
    while not ready():
        try:
            # a flag older than this launch is a leftover of an earlier run
            if failed_flag.stat().st_mtime >= started - 1.0:
                raise AdaptkitError(
                    f"rank {rank}: rank 0 failed to build the missing defaults "
                    f"({failed_flag.read_text().strip()})"
                )
        except FileNotFoundError:
            pass
        time.sleep(WAIT_POLL_S)
