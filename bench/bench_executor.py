"""Study executors: the cells of a study (the `ci` preset at the readme preset's 40-step
budget, its in-context stage included) with 1 vs 2 local workers, and the per-job overhead of
each executor on empty jobs. The data and bases are built once (inline) into a template folder;
each timed run starts from a copy of it without its cells, so it times the cells' wave.

    python bench/bench_executor.py [--preset ci] [--budget-steps 40] [--jobs 40]

Prints wall times and their ratio, and the per-job overhead: inline, local with the workers
spawned by the call, local on a kept pool (`keep_workers`, what a study uses) once it is
started, Ray on warm workers; figures in docs/cluster.md come from this script.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from adaptkit.execute import Job, available_cpus, keep_workers, run_jobs
from adaptkit.study.leave_one_out import run_study
from adaptkit.study.plan import StudyPlan

sys.path.insert(0, str(Path(__file__).parent))
from bench_executor_jobs import touch


def cells_seconds(plan: StudyPlan, template: Path, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s"
        shutil.copytree(template, out)
        shutil.rmtree(out / "cells")
        (out / "icl.json").unlink()
        t0 = time.perf_counter()
        run_study(plan, out, workers=workers)
        return time.perf_counter() - t0


def per_job_ms(executor: str, n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [Job(f"e{i}", Path(tmp) / f"e{i}", touch, {"done": str(Path(tmp) / f"e{i}")})
                for i in range(n)]  # fmt: skip
        t0 = time.perf_counter()
        s = run_jobs(jobs, Path(tmp) / "claims", executor, workers=2)
        assert s.ok and len(s.ran) == n, s
        return (time.perf_counter() - t0) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="ci")
    ap.add_argument("--budget-steps", type=int, default=40)
    ap.add_argument("--jobs", type=int, default=40)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"cores available: {available_cpus()}, load average: {os.getloadavg()[0]:.2f}")
    plan = StudyPlan.preset_named(args.preset).replace(budget_steps=args.budget_steps)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_study(plan, Path(tmp) / "template", executor="inline")
        print(f"whole study inline (collection, base, cells): {time.perf_counter() - t0:.1f} s")
        one = cells_seconds(plan, Path(tmp) / "template", 1)
        two = cells_seconds(plan, Path(tmp) / "template", 2)
    n = len(plan.cells()) + plan.icl
    print(f"{n} jobs (--preset {args.preset} --budget-steps {args.budget_steps}): 1 worker "
          f"{one:.1f} s, 2 workers {two:.1f} s, speed-up {one / two:.2f}x")  # fmt: skip
    for executor in ("inline", "local"):
        print(f"empty job, {executor}: {per_job_ms(executor, args.jobs):.1f} ms/job (2 workers, "
              f"{'spawn included' if executor == 'local' else 'in this process'})")  # fmt: skip
    with keep_workers():  # a study's pool: started once, then every wave runs on it
        t0 = time.perf_counter()
        per_job_ms("local", 4)
        start = time.perf_counter() - t0
        warm = per_job_ms("local", args.jobs)
    print(f"empty job, local kept pool: {warm:.1f} ms/job once started "
          f"(2 workers; starting them and 4 jobs: {start:.1f} s)")  # fmt: skip
    try:
        import ray
    except ImportError:
        print("ray: not installed (pip install 'adaptkit[ray]')")
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private one-node cluster: no token
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    per_job_ms("ray:auto", 4)  # warm the workers: their start-up is not per-job overhead
    print(f"empty job, ray: {per_job_ms('ray:auto', args.jobs):.1f} ms/job (2 CPUs)")
    ray.shutdown()


if __name__ == "__main__":
    main()
