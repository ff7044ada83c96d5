"""The default base shipped inside the package: it loads, it is the default recipe's, its weights
are the recorded ones, it scores as recorded, and the main job starts from it; rebuilding it."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from adaptkit.bootstrap.provenance import read_provenance
from adaptkit.bootstrap.recipe import Recipe, recipe_matches
from adaptkit.bootstrap.ship import (
    SHIP_CHECK,
    SHIPPED_BASE,
    default_base,
    ship_base,
    ship_check,
    shipped_base,
)
from adaptkit.ckpt.checkpoint import checkpoint_fingerprint
from adaptkit.ckpt.config_file import read_model_config
from adaptkit.ckpt.layout import latest_checkpoint
from adaptkit.ckpt.load import load_checkpoint
from adaptkit.cli import app
from adaptkit.plugins import get_registry

INFO = read_provenance(SHIPPED_BASE)


def test_a_base_ships_with_its_provenance():
    assert INFO is not None and INFO["complete"], f"no shipped base in {SHIPPED_BASE}"
    assert {"recipe", "command", "data_sha256", "adaptkit", "fingerprint", "check"} <= set(INFO)
    newest = latest_checkpoint(SHIPPED_BASE)
    assert sorted(p.name for p in newest.iterdir()) == ["config.json", "metadata.json", "model.pth"]
    size = sum(p.stat().st_size for p in SHIPPED_BASE.rglob("*") if p.is_file())
    assert size < 4_000_000, f"the shipped base is {size / 1e6:.1f} MB"


def test_shipped_base_loads_and_matches_its_recipe():
    assert recipe_matches(INFO["recipe"], Recipe())
    assert shipped_base(Recipe()) == SHIPPED_BASE
    ckpt = load_checkpoint(SHIPPED_BASE)
    recipe = Recipe()
    assert replace(ckpt.config, extra={}) == read_model_config(recipe.model)
    trained = ckpt.config.extra["adaptkit_train"]  # what config.json records of the training
    assert (trained["epochs"], trained["lr"], trained["batch_size"]) == (
        recipe.pretrain_epochs,
        recipe.pretrain_lr,
        recipe.batch_size,
    )
    tasks = {t.robot for t in ckpt.meta.tasks.values()}
    assert set(recipe.base_robots) <= tasks
    assert checkpoint_fingerprint(SHIPPED_BASE) == INFO["fingerprint"]


def test_shipped_base_scores_as_recorded():
    check = ship_check(SHIPPED_BASE, get_registry())
    assert {k: check[k] for k in SHIP_CHECK} == {k: INFO["check"][k] for k in SHIP_CHECK}
    assert check["mean_return"] == pytest.approx(INFO["check"]["mean_return"], rel=0.02, abs=0.02)


def test_main_job_starts_from_the_shipped_base_unless_one_is_built(tmp_path):
    assert default_base(tmp_path, Recipe()) == SHIPPED_BASE
    assert default_base(tmp_path, Recipe.tiny()) == tmp_path / "base"  # another recipe: built
    assert default_base(tmp_path, replace(Recipe(), histories=9)) == tmp_path / "base"
    # the evaluation's and fine-tune's settings do not make another base
    assert default_base(tmp_path, replace(Recipe(), eval_envs=4, finetune_epochs=2)) == SHIPPED_BASE
    (tmp_path / "base").mkdir()  # a base the user built (or is building) wins
    assert default_base(tmp_path, Recipe()) == tmp_path / "base"


def test_recipe_recorded_before_a_field_existed_still_matches():
    recorded = json.loads(json.dumps(INFO["recipe"]))
    recorded.pop("noise_cycle", None)
    assert recipe_matches(recorded, Recipe())
    assert not recipe_matches({**recorded, "histories": 3}, Recipe())
    assert not recipe_matches(None, Recipe())


def test_build_base_rebuilds_and_ships_a_tiny_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["build-base", "--recipe", "tiny", "--out", "models/base"])
    assert r.exit_code == 0, r.output
    info = read_provenance(tmp_path / "models" / "base")
    assert info["complete"] and recipe_matches(info["recipe"], Recipe.tiny())
    dest = ship_base(tmp_path / "models" / "base", get_registry(), tmp_path / "shipped")
    assert shipped_base(Recipe.tiny(), dest) == dest and shipped_base(Recipe(), dest) is None
    again = ship_check(dest, get_registry())
    assert again["mean_return"] == pytest.approx(read_provenance(dest)["check"]["mean_return"])


@pytest.mark.slow
def test_rebuilding_the_default_base_from_its_recipe(tmp_path, monkeypatch):
    """The shipped base's command, from nothing (≈ 10 min on 2 cores): same recipe, loads."""
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["build-base", "--out", "models/base"])
    assert r.exit_code == 0, r.output
    info = read_provenance(tmp_path / "models" / "base")
    assert recipe_matches(info["recipe"], Recipe()) and info["data_sha256"] == INFO["data_sha256"]
    load_checkpoint(tmp_path / "models" / "base")
