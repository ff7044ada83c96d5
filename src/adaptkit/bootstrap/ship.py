"""The default base shipped inside the package: where it is, when it serves a recipe (and so
which base the main job starts from when none is named), and how a maintainer ships a freshly
built one (`adaptkit build-base --ship`) with its recorded check."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from adaptkit.bootstrap.provenance import BUILD_MARKER, read_provenance, write_provenance
from adaptkit.bootstrap.recipe import Recipe, recipe_matches
from adaptkit.ckpt.checkpoint import checkpoint_fingerprint
from adaptkit.ckpt.layout import REQUIRED_FILES, RESTORE_HINT, latest_checkpoint
from adaptkit.ckpt.shipped import shipped_folder
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate import EvalSettings, ModelPolicy, evaluate_policy
from adaptkit.fileio import atomic_dir
from adaptkit.plugins import Registry

# The default recipe's base, shipped inside the package (rebuilt by `adaptkit build-base --ship`):
# the main job adapts from it instead of rebuilding it on every fresh machine.
SHIPPED_BASE = shipped_folder("default")  # found by name + fingerprint: adaptkit.ckpt.shipped
# the shipped base's recorded check: its zero-shot return on one of its own robots, re-run by a test
SHIP_CHECK = {"robot": "go1", "num_envs": 2, "max_steps": 150, "seed": 777}


def shipped_base(recipe: Recipe, folder: Path = SHIPPED_BASE) -> Path | None:
    """The shipped base when it was built from `recipe` (None: not shipped, or another recipe).
    Half a shipped base (weights without their provenance.json, or the record without the
    weights) or a damaged record is an error naming the file, never "not shipped": that would
    send the main job off to build a whole new base."""
    info, newest = read_provenance(folder), latest_checkpoint(folder)
    if info is None and newest is None:
        return None
    if info is None or newest is None:
        missing = folder / BUILD_MARKER if info is None else folder / "NNNN_epoch"
        raise AdaptkitError(f"{missing}: missing from the shipped base {folder}; {RESTORE_HINT}")
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
    check_source_checkout(dest)


def check_source_checkout(dest: Path) -> None:
    """A base ships only into a source checkout (never into an installed site-packages)."""
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
