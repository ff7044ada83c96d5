"""adaptkit.execute: jobs skipped when done, failures reported per job, claims that keep two
runners off one job and are taken over when their owner died, a killed worker's job run again on
the rerun, and progress notes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import helpers_execute as hx
import pytest

from adaptkit.errors import AdaptkitError
from adaptkit.execute import Job, claim_is_stale, parse_executor, run_jobs, take_claim
from adaptkit.progress import NoteCollector


def _job(tmp: Path, i: int, seconds: float = 0.0, threads: int = 1) -> Job:
    done, log = tmp / "done" / f"j{i}.ok", tmp / f"j{i}.log"
    kwargs = {"done": str(done), "log": str(log), "seconds": seconds}
    return Job(id=f"j{i}", done=done, fn=hx.write_done, kwargs=kwargs, threads=threads)


def _jobs(tmp: Path, n: int, seconds: float = 0.0, threads: int = 1) -> list[Job]:
    return [_job(tmp, i, seconds, threads) for i in range(n)]


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_runs_skips_and_reports_failures(tmp_path, executor):
    (tmp_path / "done").mkdir()
    jobs = _jobs(tmp_path, 3, threads=2)
    jobs[0].done.write_text("finished earlier\n")
    bad = [
        Job("bad-adaptkit", tmp_path / "x", hx.fail, {"message": "go7: unknown", "adaptkit": True}),
        Job("bad-value", tmp_path / "y", hx.fail, {"message": "boom", "adaptkit": False}),
        Job("no-done", tmp_path / "z", hx.forget_done, {"done": str(tmp_path / "z")}),
    ]  # fmt: skip
    notes = NoteCollector()
    s = run_jobs([*jobs, *bad], tmp_path / "claims", executor, workers=2, reporter=notes)
    assert s.skipped == ("j0",) and sorted(s.ran) == ["j1", "j2"] and not s.ok
    assert s.failed["bad-adaptkit"] == "go7: unknown"  # the one-line message, kept
    assert s.failed["bad-value"] == "ValueError: boom" and "Traceback" in s.details["bad-value"]
    assert "without writing" in s.failed["no-done"]
    assert not (tmp_path / "j0.log").exists()  # done before: not run
    for j in ("j1", "j2"):  # run once each, with the job's thread count
        (line,) = (tmp_path / f"{j}.log").read_text().splitlines()
        assert line.split()[3] == "2"
    assert not list((tmp_path / "claims").glob("*.claim"))  # every claim removed after
    text = "\n".join(notes.notes)
    assert "1 of 6 already done" in text and "bad-value failed: ValueError: boom" in text
    assert "6/6" in text
    # a rerun runs only what is not done
    s = run_jobs(jobs, tmp_path / "claims", executor)
    assert s.ran == () and len(s.skipped) == 3 and s.ok


def test_claims_live_stale_and_lease(tmp_path):
    claims = tmp_path / "claims"
    mine = take_claim(claims, "a")
    assert mine is not None and take_claim(claims, "a") is None  # held by a live process
    mine.release()
    assert not (claims / "a.claim").exists()
    # a claim of a dead process on this host is taken over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    owner = {"host": socket.gethostname(), "pid": int(dead), "started": time.time()}
    (claims / "b.claim").write_text(json.dumps(owner))
    assert claim_is_stale(claims / "b.claim")
    taken = take_claim(claims, "b")
    assert taken is not None and json.loads((claims / "b.claim").read_text())["pid"] == os.getpid()
    taken.release()
    # another host's claim: only its lease (heartbeat age) makes it stale
    (claims / "c.claim").write_text(json.dumps({**owner, "host": "elsewhere"}))
    assert not claim_is_stale(claims / "c.claim") and take_claim(claims, "c") is None
    old = time.time() - 100
    os.utime(claims / "c.claim", (old, old))
    assert claim_is_stale(claims / "c.claim", lease_s=60)
    assert take_claim(claims, "c", lease_s=60) is not None


def test_bad_executor_and_workers(tmp_path):
    assert parse_executor("ray:10.0.0.1:6379") == ("ray", "10.0.0.1:6379")
    with pytest.raises(AdaptkitError, match="executor 'slurm'"):
        run_jobs([], tmp_path, "slurm")
    with pytest.raises(AdaptkitError, match="--workers"):
        run_jobs([], tmp_path, "local", workers=0)


def test_killed_worker_job_runs_again_on_rerun(tmp_path):
    done, pid_file = tmp_path / "slow.ok", tmp_path / "slow.pid"
    slow = Job("slow", done, hx.wait_to_be_killed, {"done": str(done), "pid_file": str(pid_file)})
    quick = _jobs(tmp_path, 2)
    (tmp_path / "done").mkdir()

    def kill_when_started() -> None:
        while not pid_file.exists():
            time.sleep(0.05)
        time.sleep(0.2)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)

    killer = threading.Thread(target=kill_when_started)
    killer.start()
    s = run_jobs([slow, *quick], tmp_path / "claims", "local", workers=1)
    killer.join()
    assert "died mid-job" in s.failed["slow"] and not done.exists()
    assert sorted(s.ran) == ["j0", "j1"]  # the jobs not started went on on a fresh pool
    assert (tmp_path / "claims" / "slow.claim").exists()  # the dead worker's claim is left...
    s = run_jobs([slow, *quick], tmp_path / "claims", "local", workers=1)
    assert s.ran == ("slow",) and s.ok and done.exists()  # ...and taken over by the rerun


def test_two_executors_never_run_one_job_twice(tmp_path):
    (tmp_path / "done").mkdir()
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pathlib import Path
        from adaptkit.execute import Job, run_jobs
        import helpers_execute as hx
        tmp = Path({str(tmp_path)!r})
        jobs = [Job(f"j{{i}}", tmp / "done" / f"j{{i}}.ok", hx.write_done,
                    {{"done": str(tmp / "done" / f"j{{i}}.ok"), "log": str(tmp / f"j{{i}}.log"),
                     "seconds": 0.3}}) for i in range(6)]
        s = run_jobs(jobs, tmp / "claims", sys.argv[1])
        print(len(s.ran), len(s.busy), len(s.skipped), len(s.failed))
    """)
    procs = [
        subprocess.Popen([sys.executable, "-c", script, ex], stdout=subprocess.PIPE, text=True)
        for ex in ("inline", "inline")
    ]
    counts = [list(map(int, p.communicate(timeout=120)[0].split())) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    for i in range(6):  # every job ran exactly once, by one of the two
        assert len((tmp_path / f"j{i}.log").read_text().splitlines()) == 1
        assert (tmp_path / "done" / f"j{i}.ok").exists()
    assert sum(c[0] for c in counts) == 6 and all(c[3] == 0 for c in counts)


# -- issue 35, item 5: hangs and leaks -------------------------------------------------------
def test_dead_ray_address_fails_in_seconds_naming_it(tmp_path):
    """Nothing listens on 127.0.0.1:1: one line naming the address, not minutes of retries."""
    t0 = time.perf_counter()
    with pytest.raises(AdaptkitError, match=r"--ray 127\.0\.0\.1:1: no Ray cluster answers"):
        run_jobs(_jobs(tmp_path, 1), tmp_path / "claims", "ray:127.0.0.1:1")
    assert time.perf_counter() - t0 < 15


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie (dead, not yet reaped by its new parent) is gone too
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_local_workers_end_with_their_parent(tmp_path):
    """kill -9 of the process running the jobs: its workers end too (mid-job), instead of
    running on and then blocking forever."""
    pid_file, done = tmp_path / "worker.pid", tmp_path / "slow.ok"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pathlib import Path
        from adaptkit.execute import Job, run_jobs
        import helpers_execute as hx
        job = Job("slow", Path({str(done)!r}), hx.sleep_and_log_pid,
                  {{"done": {str(done)!r}, "pid_file": {str(pid_file)!r}, "seconds": 120}})
        run_jobs([job], Path({str(tmp_path / "claims")!r}), "local", workers=1)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.time() + 120
        while not pid_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        worker = int(pid_file.read_text().split()[0])
        assert not _gone(worker)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.time() + 10
    while not _gone(worker) and time.time() < deadline:
        time.sleep(0.1)
    alive = not _gone(worker)
    if alive:
        os.kill(worker, signal.SIGKILL)
    assert not alive, "the worker outlived its killed parent"
    assert not done.exists()
    # its claim is stale (pid gone): a rerun runs the job at once
    assert claim_is_stale(tmp_path / "claims" / "slow.claim")


def test_empty_garbage_and_reused_pid_claims_do_not_block(tmp_path):
    """Claims nobody holds — empty, garbage, a live pid that is not the claim's owner (reused)
    — are taken over at once, not left 'claimed by another live runner' for the lease."""
    (tmp_path / "done").mkdir()
    claims = tmp_path / "claims"
    claims.mkdir()
    (claims / "j0.claim").write_text("")
    (claims / "j1.claim").write_text("{not json")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # a live process of this host, started after the claim says its owner did
        host = socket.gethostname()
        (claims / "j2.claim").write_text(
            json.dumps({"host": host, "pid": other.pid, "started": time.time() - 60})
        )
        (claims / "j3.claim").write_text(json.dumps({"host": host, "pid": 2**40}))
        notes = NoteCollector()
        t0 = time.perf_counter()
        s = run_jobs(_jobs(tmp_path, 4), claims, "inline", reporter=notes)
    finally:
        other.kill()
        other.wait()
    assert sorted(s.ran) == ["j0", "j1", "j2", "j3"] and s.ok, s
    assert time.perf_counter() - t0 < 30
    assert not any("claimed by another" in n for n in notes.notes)
    # a claim a live runner holds still keeps others off
    held = take_claim(claims, "live")
    assert held is not None and take_claim(claims, "live") is None
    held.release()


def test_kept_workers_serve_every_wave(tmp_path):
    """Within keep_workers, the waves run on the same worker processes (started once)."""
    from adaptkit.execute import keep_workers

    (tmp_path / "done").mkdir()
    with keep_workers():
        for wave in range(2):
            jobs = [_job(tmp_path, 10 * wave + i) for i in range(3)]
            s = run_jobs(jobs, tmp_path / "claims", "local", workers=2)
            assert s.ok and len(s.ran) == 3
    pids = {
        int(p.read_text().split()[0]) for p in tmp_path.glob("j*.log")
    }  # one "pid start end threads" line per job
    assert 1 <= len(pids) <= 2, pids
