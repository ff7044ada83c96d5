"""A base model where the defaults point (`models/base`): built from the recipe's robots when
missing, through the one base builder the embodiment study's bases share (`build_base`:
provenance → pretrain → provenance)."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from adaptkit.bootstrap.data import data_fingerprint, ensure_robot_data, robot_data_folder
from adaptkit.bootstrap.provenance import base_is_built, read_provenance, write_provenance
from adaptkit.bootstrap.recipe import Recipe
from adaptkit.ckpt.config_file import read_model_config
from adaptkit.data.config import write_dataset_config
from adaptkit.errors import AdaptkitError
from adaptkit.plugins import Registry
from adaptkit.progress import SILENT, Reporter
from adaptkit.robot import RobotSpec
from adaptkit.train import TrainConfig, pretrain
from adaptkit.version import __version__


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
    build_base(
        base,
        specs,
        data_dir,
        config_path,
        {
            "recipe": asdict(recipe),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "adaptkit": __version__,
            "dataset_config": str(config_path),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        model=recipe.model,
        train=TrainConfig(
            epochs=recipe.pretrain_epochs,
            lr=recipe.pretrain_lr,
            batch_size=recipe.batch_size,
            precision=recipe.precision,
            seed=recipe.collect_seed,
        ),
        registry=registry,
        resume=resume,
        reporter=reporter,
        device=device,
    )
    return base


def build_base(
    base: Path,
    specs: Sequence[RobotSpec],
    data_dir: Path | str,
    config: Path,
    info: Mapping[str, Any],
    *,
    model: Mapping[str, Any],
    train: TrainConfig,
    registry: Registry,
    resume: bool,
    reporter: Reporter = SILENT,
    device: str | None = None,
    keep: int | None = None,
) -> dict[str, Any]:
    """Pretrain a base into the run folder `base` on the robots `specs` (their histories in
    `data_dir`, listed by the dataset config `config`), bracketed by its provenance.json: first
    `info` with `complete: False` and the data's fingerprint (over an earlier build's record,
    whose other keys stay), then the same with `complete: True`, the final loss and the seconds.
    Returns the finished provenance. The main job's base (`ensure_base_model`) and the
    embodiment study's bases are built here; each says in `info` what it was built from."""
    started = {
        "complete": False,
        **info,
        "data_sha256": data_fingerprint([robot_data_folder(s, data_dir) for s in specs]),
    }
    write_provenance(base, {**(read_provenance(base) or {}), **started})
    result = pretrain(
        [config],
        data_dir=data_dir,
        name=base.name,
        save_dir=base.parent,
        model_config=read_model_config(model),
        train_config=train,
        resume=resume,
        device=device,
        reporter=reporter,
        registry=registry,
        keep=keep,
    )
    done = {**started, "complete": True, "final_loss": result.final_loss,
            "seconds": round(result.seconds, 2)}  # fmt: skip
    write_provenance(base, done)
    return done
