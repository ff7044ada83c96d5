"""The Ray executor on a real cluster started here: a head and a worker node on 127.0.0.1
(`ray start`), jobs spread over both, and the `ci` study through it giving the same cells as
in-process. Skipped without the ray extra."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import helpers_execute as hx  # noqa: E402

from adaptkit.execute import Job, run_jobs  # noqa: E402

TESTS = Path(__file__).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_start(temp: str, *args: str) -> None:
    # the workers import the tests' job functions by name: tests/ on their path
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    env["RAY_AUTH_MODE"] = "disabled"  # a private cluster on 127.0.0.1: no token to share
    cmd = [shutil.which("ray") or "ray", "start", "--num-cpus=1", "--disable-usage-stats",
           f"--temp-dir={temp}", "--object-store-memory=80000000", *args]  # fmt: skip
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def _stop(temp: str) -> None:
    """End the processes of this cluster only: those naming its own temp folder."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if temp.encode() in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster():
    """ADDRESS of a head and one worker node, 1 CPU each, on 127.0.0.1."""
    temp = tempfile.mkdtemp(prefix="rayt", dir="/tmp")  # short: Ray's socket paths are limited
    port = _free_port()
    address = f"127.0.0.1:{port}"
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # the driver (this process) joins without a token
    try:
        _ray_start(temp, "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                   "--include-dashboard=false")  # fmt: skip
        _ray_start(temp, f"--address={address}", "--node-ip-address=127.0.0.1")
        yield address
    finally:
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved
        _stop(temp)
        shutil.rmtree(temp, ignore_errors=True)


def test_jobs_spread_over_two_nodes(cluster, tmp_path):
    jobs = [
        Job(f"n{i}", tmp_path / f"n{i}.txt", hx.write_ray_node,
            {"done": str(tmp_path / f"n{i}.txt"), "seconds": 1.0})
        for i in range(4)
    ]  # fmt: skip
    s = run_jobs(jobs, tmp_path / "claims", f"ray:{cluster}")
    assert s.ok and sorted(s.ran) == ["n0", "n1", "n2", "n3"], s.failed
    nodes = {(tmp_path / f"n{i}.txt").read_text() for i in range(4)}
    assert len(nodes) == 2  # 1 CPU per node, tasks of 1 CPU: both nodes ran some
    assert not ray.is_initialized()  # run_jobs left the driver as it found it
    assert run_jobs(jobs, tmp_path / "claims", f"ray:{cluster}").skipped == tuple(
        j.id for j in jobs
    )


def test_ci_study_on_ray_same_cells_as_in_process(cluster, tmp_path):
    from adaptkit.study.leave_one_out import run_study
    from adaptkit.study.plan import StudyPlan

    plan = StudyPlan.preset_named("ci").replace(icl=False)
    t0 = time.perf_counter()
    run_study(plan, tmp_path / "ray", executor=f"ray:{cluster}")
    t_ray = time.perf_counter() - t0
    run_study(plan, tmp_path / "inline", executor="inline")
    keys = ("normalised_score", "mean_return", "falls", "final_loss", "steps", "data_steps")
    for cell in plan.cells():
        a, b = (json.loads((tmp_path / f / "cells" / f"{cell.id}.json").read_text())
                for f in ("ray", "inline"))  # fmt: skip
        assert {k: a[k] for k in keys} == {k: b[k] for k in keys}, cell.id
    print(f"ci study on a 2-node Ray cluster: {t_ray:.1f} s")
