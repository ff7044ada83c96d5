"""A robot's learning histories where the defaults point (`data/<robot>_trajectories`):
collected with its demonstrator when missing (also as a job of adaptkit.execute), and the
fingerprint of what a base was trained on."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from adaptkit.bootstrap.recipe import Recipe
from adaptkit.data.dataset_folder import COLLECTED_NAME
from adaptkit.data.history import list_history_files, read_task_metadata, task_metadata_path
from adaptkit.errors import AdaptkitError
from adaptkit.execute import Job
from adaptkit.plugins import worker_registry
from adaptkit.progress import SILENT, Reporter
from adaptkit.robot import RobotSpec
from adaptkit.sim.collect import collect_histories
from adaptkit.tasks import DEFAULT_TASK


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
        noise_cycle=0 if recipe.curriculum else recipe.noise_cycle,
        curriculum=recipe.curriculum,
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
