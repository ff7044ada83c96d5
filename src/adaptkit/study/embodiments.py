"""The embodiment-scaling study: does a base that has seen more bodies serve a new one better?

Bases are pretrained on the first K accepted members of a procedural family (adaptkit.family),
K ∈ plan.ks, on two curves:
  budget    the same optimiser steps and the same total data at every K (data per body ∝ 1/K);
  per_body  the same data per body (what every body gets at the largest K), steps ∝ K (at the
            largest K it is the budget base, not built twice).
All four built-in robots are held out. For every base and held-out body (the built-ins through the
family's shared group, plus family members no base saw) the probe runs `icl_episodes` episodes
with the context chained across them and with it reset between them: zero-shot is the chained
mean, the in-context gain episode 3 − episode 1 (both in units of the stand → demonstrator gap).
Then, on each budget base, the leave-one-out study's cells (adaptkit.study.leave_one_out) adapt
every built-in robot in each mode at each data size against same-budget scratch. The plan and
its presets: adaptkit.study.embodiments_plan.

    OUT/plan.json                 the plan (a rerun must agree on what the results depend on)
    OUT/bodies.json               the family members used, demonstrator acceptance and spread
    OUT/data/h<N>/                N learning histories per family body (one noise cycle each)
    OUT/data/robots/              the built-in robots' histories (the adaptation data)
    OUT/bases/k<K>-<curve>-s<S>/  the bases, with provenance.json
    OUT/refs/<body>.json          demonstrator and standing still under the probe's settings
    OUT/probes/<base>/<body>.json zero-shot and the in-context curves
    OUT/adapt/k<K>/cells/*.json   adaptation cells on base K (adapt/scratch/ for scratch)
    OUT/report.md, summary.json, embodiments.png
Every file is written atomically and skipped on a rerun, so the study resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from adaptkit.adapt.modes import get_mode
from adaptkit.bootstrap.base import build_base, write_base_dataset_config
from adaptkit.bootstrap.data import collection_job
from adaptkit.bootstrap.provenance import base_is_built, read_provenance
from adaptkit.ckpt.layout import latest_checkpoint
from adaptkit.ckpt.load import load_checkpoint
from adaptkit.data.windows import count_windows
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate.in_context import foreign_body, run_controls
from adaptkit.evaluate.report import reference_rows
from adaptkit.evaluate.score import score_against
from adaptkit.execute import Job, keep_workers, raise_failed, run_wave
from adaptkit.family.core import CACHE_ENV, RobotFamily, cache_root
from adaptkit.fileio import read_json, write_json
from adaptkit.plugins import Registry, get_registry, plugin_files, worker_registry
from adaptkit.progress import SILENT, Reporter
from adaptkit.robot import RobotSpec
from adaptkit.sim.family_gait import SearchBudget, accepted_members, gait_search_job
from adaptkit.study.common import budget_epochs, check_plan_file, gain, spread
from adaptkit.study.embodiments_plan import GAIT_SEARCHES, EmbodimentPlan
from adaptkit.study.embodiments_report import write_embodiment_report
from adaptkit.study.leave_one_out import LeaveOneOutStudy
from adaptkit.study.plan import ROBOTS
from adaptkit.train import TrainConfig


def base_name(k: int, curve: str, seed: int) -> str:
    return f"k{k:03d}-{curve}-s{seed}"


PROBE_PREFIX = 2  # episodes of blank / standing / foreign context before the scored ones
BASE_DONE = "built.json"  # in a base's folder once pretraining finished: the job's done file


class EmbodimentStudy:
    """Runs an EmbodimentPlan into a results folder in waves of independent jobs
    (adaptkit.execute): gait searches, collections, bases, probes, then each base's cells."""

    def __init__(
        self,
        plan: EmbodimentPlan,
        out: Path,
        registry: Registry,
        reporter: Reporter = SILENT,
        executor: str = "local",
        workers: int | None = None,
    ) -> None:
        self.plan, self.out, self.registry = plan, out, registry
        self.reporter, self.executor, self.workers = reporter, executor, workers
        if plan.family not in registry.families:
            raise AdaptkitError(
                f"--family: {plan.family!r} is not registered; families: "
                f"{', '.join(registry.families) or 'none'}"
            )
        self.family: RobotFamily = registry.families[plan.family]
        self.files = plugin_files(registry)
        self.failed: dict[str, str] = {}

    # -- paths --------------------------------------------------------------------------------
    def data_folder(self, histories: int) -> Path:
        return self.out / "data" / f"h{histories}"

    @property
    def robot_data(self) -> Path:
        return self.out / "data" / "robots"

    def base_path(self, k: int, curve: str, seed: int) -> Path:
        return self.out / "bases" / base_name(k, curve, seed)

    def probe_path(self, base: str, body: str) -> Path:
        return self.out / "probes" / base / f"{body}.json"

    # -- stages -------------------------------------------------------------------------------
    def wave(self, name: str, jobs: Sequence[Job]) -> bool:
        s = run_wave(f"embodiments: {name}", jobs, self.out / "claims", self.executor,
                     self.workers, self.reporter, self.failed)  # fmt: skip
        return s.ok and not s.busy

    def bodies(self) -> tuple[list[RobotSpec], list[RobotSpec]]:
        """The first max(K) accepted members (the bases' bodies, in order) and the held-out
        ones after them; their demonstrator searches run as jobs first (cached)."""
        p = self.plan
        need = max(p.ks) + p.held_out_bodies
        budget = SearchBudget(**GAIT_SEARCHES[p.gait_search])
        guess = min(self.family.size, math.ceil(need / 0.8))  # ≈ 85 % are accepted
        self.wave("gait searches", [gait_search_job(self.family, i, None, budget)
                                    for i in range(guess)])  # fmt: skip
        specs, records = accepted_members(self.family, need, None, budget)  # any more: here
        path = self.out / "bodies.json"
        if not path.is_file():
            accepted = [r for r in records if r.accepted]
            write_json(
                path,
                {
                    "family": self.family.name,
                    "looked_at": len(records),
                    "accepted": len(accepted),
                    "rejected": {r.robot: r.reason for r in records if not r.accepted},
                    "demonstrator_score": spread([r.tune_score for r in accepted]),
                    "demonstrator_speed": spread([r.speed for r in accepted]),
                    "search_seconds": spread([r.seconds for r in records]),
                    "train_bodies": [s.name for s in specs[: max(p.ks)]],
                    "held_out_bodies": [s.name for s in specs[max(p.ks) :]],
                },
            )
        return specs[: max(p.ks)], specs[max(p.ks) :]

    def collections(self, bodies: Sequence[RobotSpec]) -> list[Job]:
        """Every history folder the bases and cells read: one job per (body, history count)
        and per built-in robot."""
        p = self.plan
        jobs = [collection_job(self.registry.robot(r), self.robot_data, p.robot_recipe(),
                               self.files) for r in p.robots]  # fmt: skip
        levels: dict[int, int] = {}  # histories per body → how many bodies need them
        for k, curve, _ in p.bases():
            n = p.histories_for(k, curve)
            levels[n] = max(levels.get(n, 0), k)
        for n, count in sorted(levels.items()):
            for spec in bodies[:count]:
                job = collection_job(spec, self.data_folder(n), p.family_recipe(n), self.files)
                jobs.append(dataclasses.replace(job, id=f"{job.id}-h{n}"))
        return jobs

    def base(self, k: int, curve: str, seed: int) -> Path:
        """Base (K, curve, seed) from its bodies' collected histories, for its step budget;
        provenance.json records what it was built from, built.json that it is finished."""
        p, note = self.plan, self.reporter.note
        path = self.base_path(k, curve, seed)
        if (path / BASE_DONE).is_file():
            return path
        marker = read_provenance(path)
        if base_is_built(path):  # finished by an older run, before built.json existed
            write_json(path / BASE_DONE, {"seconds": (marker or {}).get("seconds")})
            return path
        n = p.histories_for(k, curve)
        data = self.data_folder(n)
        names = read_json(self.out / "bodies.json")["train_bodies"][:k]
        if len(names) != k:
            raise AdaptkitError(
                f"{self.out / 'bodies.json'}: lists {len(names)} bodies, base needs {k}"
            )
        specs = [self.registry.robot(name) for name in names]
        if p.reward_scale is not None:
            specs = [dataclasses.replace(s, reward_scale=p.reward_scale) for s in specs]
        config = write_base_dataset_config(specs, data, f"k{k:03d}.yaml")
        ctx = p.context_len()
        stride = p.window_stride or max(1, ctx // 4)
        windows = count_windows([p.history_steps] * (n * k), ctx, stride)
        # the per-body curve's smallest K may hold fewer windows than one batch: a smaller batch
        batch = min(p.pretrain_batch, windows)
        epochs, per_epoch = budget_epochs(windows, batch, p.pretrain_steps_for(k, curve))
        note(f"embodiments: base {path.name}: {k} bodies × {n} histories, "
             f"{epochs} × {per_epoch} optimiser steps")  # fmt: skip
        info = {
            "k": k,
            "curve": curve,
            "seed": seed,
            "bodies": names,
            "histories_per_body": n,
            "data_steps": n * k * p.history_steps,
            "optimiser_steps": epochs * per_epoch,
            "batch_size": batch,
            "plan": p.as_dict(),
        }
        train = TrainConfig(
            epochs=epochs,
            max_steps_per_epoch=per_epoch,
            lr=p.pretrain_lr,
            batch_size=batch,
            precision=p.precision,
            seed=seed,
            save_initial=False,
            save_every=max(1, epochs // 4),  # a killed build resumes from its last quarter
            trajectory_sparsity=stride,
        )
        done = build_base(path, specs, data, config, info, model=p.model, train=train,
                          registry=self.registry, resume=latest_checkpoint(path) is not None,
                          keep=1)  # fmt: skip
        write_json(path / BASE_DONE, {"seconds": done["seconds"]})
        return path

    def refs(self, spec: RobotSpec) -> dict[str, Any]:
        """Demonstrator and standing still under the probe's settings (cached in OUT/refs)."""
        path = self.out / "refs" / f"{spec.name}.json"
        try:
            return read_json(path)
        except AdaptkitError:  # not there yet, or cut short: measured again
            pass
        rows = reference_rows(spec, self.plan.probe_settings(self.robot_data))
        write_json(path, rows)
        return rows

    def probe(self, base: Path, spec: RobotSpec) -> dict[str, Any]:
        """Zero-shot through the base's group and in context, with every control of
        adaptkit.evaluate.controls (the `foreign` context: a built-in robot of the other joint
        convention, standing): the context chained across episodes and reset, and the first
        scored episode after a blank, a standing and a foreign prefix of PROBE_PREFIX
        episodes."""
        path = self.probe_path(base.name, spec.name)
        refs = self.refs(spec)
        t0 = time.perf_counter()
        settings = self.plan.probe_settings(self.robot_data)
        ckpt = load_checkpoint(base)
        builtins = [self.registry.robot(r) for r in ROBOTS]
        foreign = foreign_body(spec, builtins)
        probed = run_controls(ckpt, spec, settings, refs, foreign, PROBE_PREFIX)
        curves = probed["curves"]
        first = PROBE_PREFIX  # the first episode a prefix control scores

        def mean(control: str) -> float | None:
            rets = [r for r in curves[control]["per_episode_return"] if r is not None]
            return score_against(sum(rets) / len(rets), refs) if rets else None

        row = {
            "base": base.name,
            "body": spec.name,
            "builtin": spec.name in ROBOTS,
            "group": probed["group"],
            # zero-shot: every episode with a fresh context (the window's start); in context:
            # the episodes chained; and the first own episode after a blank (position alone) and
            # a standing (what the body shows standing) context of PROBE_PREFIX episodes
            "zero_shot": mean("reset"),
            "in_context": mean("chained"),
            "zero_shot_blank": curves["blank"]["per_episode_normalised"][first],
            "zero_shot_neutral": curves["neutral"]["per_episode_normalised"][first],
            "gain_chained": gain(curves["chained"]["per_episode_normalised"]),
            "gain_reset": gain(curves["reset"]["per_episode_normalised"]),
            "foreign": foreign.name,
            "decomposition": probed["decomposition"],
            "curves": curves,
            "seconds": round(time.perf_counter() - t0, 2),
        }
        write_json(path, row)
        return row

    def adapt(self, base: Path, k: int | None) -> None:
        """The leave-one-out study's cells for the built-in robots on `base` (k None: scratch),
        run as that study's waves of jobs."""
        p = self.plan
        modes = [m for m in p.modes if get_mode(m).scratch == (k is None)]
        if not modes:
            return
        folder = self.out / "adapt" / ("scratch" if k is None else f"k{k:03d}")
        study = LeaveOneOutStudy(p.cell_plan(modes), folder, self.registry, self.reporter, False,
                       given_base=base, data=self.robot_data)  # fmt: skip
        self.failed.update(study.run(self.executor, self.workers))

    def run(self) -> dict[str, str]:
        """Every wave; returns {job id: error} of the jobs that failed."""
        p = self.plan
        check_plan_file(self.out, p.as_dict(), p.data_key())
        train_bodies, held_out = self.bodies()
        if not self.wave("collection", self.collections(train_bodies)):
            return self.failed
        common = {"out": str(self.out), "plan": p, "plugin_files": list(self.files)}
        job = functools.partial(Job, threads=p.threads)
        self.wave("pretraining", [
            job(f"base-{base_name(*b)}", self.base_path(*b) / BASE_DONE, base_job,
                {**common, "k": b[0], "curve": b[1], "seed": b[2]})
            for b in p.bases()
        ])  # fmt: skip
        built = [
            self.base_path(*b) for b in p.bases() if (self.base_path(*b) / BASE_DONE).is_file()
        ]
        bodies = list(p.robots) + [s.name for s in held_out]
        self.wave("probes", [
            job(f"probe-{b.name}-{body}", self.probe_path(b.name, body), run_probe,
                {**common, "base": str(b), "body": body})
            for b in built for body in bodies
        ])  # fmt: skip
        for k in sorted(p.ks):
            first = self.base_path(k, "budget", p.base_seeds[0])
            if "budget" in p.curves and first in built:
                self.adapt(first, k)
        if built:
            self.adapt(built[0], None)  # scratch: the base is not used, only its folder layout
        return self.failed


def _worker_study(out: str, plan: EmbodimentPlan, plugin_files: Sequence[str]) -> EmbodimentStudy:
    return EmbodimentStudy(plan, Path(out), worker_registry(plugin_files), executor="inline")


def base_job(
    out: str, plan: EmbodimentPlan, k: int, curve: str, seed: int, plugin_files: Sequence[str]
) -> None:
    """One base (a job of the pretraining wave)."""
    _worker_study(out, plan, plugin_files).base(k, curve, seed)


def run_probe(
    out: str, plan: EmbodimentPlan, base: str, body: str, plugin_files: Sequence[str]
) -> None:
    """One base on one held-out body (a job of the probes wave)."""
    study = _worker_study(out, plan, plugin_files)
    study.probe(Path(base), study.registry.robot(body))


@contextlib.contextmanager
def _gait_cache(plan: EmbodimentPlan) -> Iterator[None]:
    """A toy gait search caches its bodies and gaits apart (CACHE/quick-gaits), so the real
    family's cached demonstrators are never replaced by toy ones; local workers inherit it."""
    if plan.gait_search == "default":
        yield
        return
    saved = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(cache_root() / f"{plan.gait_search}-gaits")
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = saved


def run_embodiments(
    plan: EmbodimentPlan,
    out: Path | str,
    registry: Registry | None = None,
    reporter: Reporter = SILENT,
    executor: str = "local",
    workers: int | None = None,
) -> Path:
    """Run every stage of `plan` not yet in `out` on `executor` (adaptkit.execute), then write
    the report. Returns `out`; if a job failed, the report of what finished is still written,
    then an AdaptkitError names the failed jobs (a rerun runs only what is missing)."""
    out = Path(out).resolve()  # workers may start elsewhere
    registry = registry if registry is not None else get_registry()
    with _gait_cache(plan), keep_workers():  # local workers kept across the waves
        failed = EmbodimentStudy(plan, out, registry, reporter, executor, workers).run()
    write_embodiment_report(out)
    raise_failed("embodiments", failed, out)
    return out
