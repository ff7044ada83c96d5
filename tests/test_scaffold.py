"""`adaptkit new-robot`: the package it writes installs (pip, entry point), its robot shows in
`adaptkit robots`, simulates, and its own tests pass; relative asset paths mean "beside the
plugin file". Installed into a throwaway target folder, never into the test's environment."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from typer.testing import CliRunner

from adaptkit.cli import app
from adaptkit.errors import AdaptkitError
from adaptkit.plugins import load_registry
from adaptkit.scaffold import write_plugin_package
from adaptkit.sim import LocomotionEnv, TrotDemonstrator

# Run with a target folder as a site dir (its .pth files processed, as in site-packages).
WITH_SITE = "import site, sys; site.addsitedir(sys.argv.pop(1)); "


def test_new_robot_writes_a_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["new-robot", "spot"])
    assert res.exit_code == 0, res.output
    root = tmp_path / "adaptkit-spot"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == [
        "README.md",
        "pyproject.toml",
        "src/adaptkit_spot/__init__.py",
        "src/adaptkit_spot/plugin.py",
        "src/adaptkit_spot/spot.xml",
        "tests/test_spot.py",
    ]
    assert "pip install -e adaptkit-spot" in res.output
    pyproject = (root / "pyproject.toml").read_text()
    assert '[project.entry-points.adaptkit]\nspot = "adaptkit_spot.plugin"' in pyproject
    # the same name again, a taken name, a bad name: one line each, nothing overwritten
    before = (root / "src/adaptkit_spot/plugin.py").read_text()
    res = CliRunner().invoke(app, ["new-robot", "spot"])
    assert res.exit_code == 1 and "already exists" in res.output
    assert (root / "src/adaptkit_spot/plugin.py").read_text() == before
    res = CliRunner().invoke(app, ["new-robot", "go1", "--out", "x"])
    assert res.exit_code == 1 and "already registered by plugin 'go1'" in res.output
    with pytest.raises(AdaptkitError, match="lower-case"):
        write_plugin_package("Spot", tmp_path / "y")


def test_relative_model_path_resolves_beside_the_plugin_file(tmp_path, monkeypatch):
    root, _ = write_plugin_package("rex", tmp_path / "pkg")
    plugin = root / "src" / "adaptkit_rex" / "plugin.py"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the cwd holds no rex.xml
    spec = load_registry(plugin_files=[plugin]).robot("rex")
    assert spec.mjcf == plugin.parent / "rex.xml"
    # the starter model stands, and its gait walks forward without falling
    env = LocomotionEnv(spec, 4, seed=0)
    policy = TrotDemonstrator(spec)
    obs = env.reset()
    policy.reset(4)
    fell, speed = np.zeros(4, bool), []
    for _ in range(250):
        obs, _, _, info = env.step(policy.act(obs, env))
        fell |= info["fell"]
        speed.append(env.base_lin_vel[:, 0].mean())
    env.close()
    assert not fell.any() and np.mean(speed[100:]) > 0.2


def test_relative_paths_from_plain_spec_creation_stay_relative(tmp_path, monkeypatch):
    # outside a plugin a relative path means the cwd, as before
    from dataclasses import replace

    go1 = load_registry().robot("go1")
    (tmp_path / "m.xml").write_text(go1.mjcf.read_text())
    monkeypatch.chdir(tmp_path)
    assert replace(go1, mjcf="m.xml").mjcf.as_posix() == "m.xml"


def test_pip_install_editable_makes_it_appear(tmp_path):
    root, _ = write_plugin_package("spot", tmp_path / "adaptkit-spot")
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    proc = subprocess.run(
        [*pip, "--target", str(site), "-e", str(root)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    robots = subprocess.run(
        [sys.executable, "-c", WITH_SITE + "from adaptkit.cli import main; main()", str(site),
         "robots", "--json"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert robots.returncode == 0, robots.stderr[-2000:]
    listed = {r["robot"]: r for r in json.loads(robots.stdout)}
    assert listed["spot"]["plugin"] == "spot" and listed["spot"]["obs_dim"] == 45
    assert listed["spot"]["simulator"] == str(root / "src" / "adaptkit_spot" / "spot.xml")
    # the package's own tests pass against the installed plugin
    tests = subprocess.run(
        [sys.executable, "-c", WITH_SITE + textwrap.dedent(
            """
            import pytest
            sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", sys.argv[1]]))
            """
        ), str(site), str(root / "tests")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "2 passed" in tests.stdout
    # and nothing leaked into this environment
    assert "spot" not in load_registry().robots
