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
Then, on each budget base, the leave-one-out study's cells (adaptkit.study.run) adapt every
built-in robot in each mode at each data size against same-budget scratch.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptkit.adapt.modes import get_mode, mode_names
from adaptkit.bootstrap.base import build_base, write_base_dataset_config
from adaptkit.bootstrap.data import collection_job
from adaptkit.bootstrap.provenance import base_is_built, read_provenance
from adaptkit.bootstrap.recipe import TINY_MODEL, Recipe
from adaptkit.ckpt.config_file import read_model_config
from adaptkit.ckpt.layout import latest_checkpoint
from adaptkit.data.windows import count_windows
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate import EvalSettings, ModelPolicy, evaluate_policy
from adaptkit.evaluate.score import score_against
from adaptkit.execute import Job, raise_failed, run_wave
from adaptkit.family.core import CACHE_ENV, RobotFamily, cache_root
from adaptkit.fileio import read_json, write_json
from adaptkit.plugins import Registry, get_registry, plugin_files, worker_registry
from adaptkit.progress import SILENT, Reporter
from adaptkit.robot import RobotSpec
from adaptkit.sim.family_gait import SearchBudget, accepted_members, gait_search_job
from adaptkit.study.embodiments_report import write_embodiment_report
from adaptkit.study.plan import ROBOTS, SIZES, StudyPlan
from adaptkit.study.run import (
    _Study,
    budget_epochs,
    check_plan_file,
    reference_rows,
)
from adaptkit.tasks import get_task
from adaptkit.train import TrainConfig

CURVES = ("budget", "per_body")
# the demonstrator search per body: family_gait's default, or a toy one for CI-sized runs
GAIT_SEARCHES = {
    "default": SearchBudget(),
    "quick": SearchBudget(rounds=1, batch=6, seconds=2.0, check_envs=2, check_seconds=2.0),
}
PRESETS = ("embodiments", "embodiments-small", "embodiments-ci")


@dataclass(frozen=True)
class EmbodimentPlan:
    preset: str = "embodiments"
    family: str = "quadfam"
    ks: tuple[int, ...] = (3, 10, 30, 100)
    curves: tuple[str, ...] = CURVES
    base_seeds: tuple[int, ...] = (0, 1, 2)
    # the largest K's seeds (None: base_seeds): the in-context goal needs three there
    top_seeds: tuple[int, ...] | None = None
    held_out_bodies: int = 3  # family members after the largest K's, seen by no base
    gait_search: str = "default"  # "quick": a toy search (the ci preset), cached apart
    # -- the family's data: one noise cycle of `noise_cycle` short episodes per history, so a
    # window of the model's context holds whole episodes that improve on each other ----------
    task: str = "walk"
    episode_length: int = 86
    noise_cycle: int = 3
    histories_per_body: int = 16  # at the largest K; the per_body curve's at every K
    collect_envs: int = 16
    # -- pretraining: the same optimiser steps at every K on the budget curve ---------------
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides ({}: default)
    pretrain_steps: int = 1000
    pretrain_batch: int = 32
    pretrain_lr: float = 3e-4
    precision: str = "auto"
    # -- probes: zero-shot and the in-context curve ------------------------------------------
    probe_envs: int = 8
    icl_episodes: int = 6
    eval_seed: int = 777  # never used to collect training data
    # -- adaptation of the built-in robots on each budget base (adaptkit.study.run's cells) -----
    robots: tuple[str, ...] = ROBOTS
    sizes: tuple[str, ...] = ("1ep", "10ep")
    modes: tuple[str, ...] = field(default_factory=mode_names)
    seeds: tuple[int, ...] = (0, 1, 2)
    robot_episodes: int = 30  # one history of the SPEC schedule: its last episodes are the best
    budget_steps: int = 40
    batch_size: int = 16
    lr: float = 1e-3
    lora_rank: int = 4
    eval_envs: int = 8
    eval_episodes: int = 3
    threads: int = 1

    def __post_init__(self) -> None:
        for name, values, allowed in (
            ("--curves", self.curves, CURVES),
            ("--robots", self.robots, ROBOTS),
            ("--sizes", self.sizes, SIZES),
            ("--modes", self.modes, mode_names()),
        ):
            bad = [v for v in values if v not in allowed]
            if bad or not values:
                raise AdaptkitError(f"{name}: {bad or 'none'} not among {', '.join(allowed)}")
        if not self.ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1
                              for k in self.ks):  # fmt: skip
            raise AdaptkitError(f"--ks: give body counts >= 1, got {list(self.ks)}")
        for name in ("episode_length", "noise_cycle", "histories_per_body", "pretrain_steps",
                     "pretrain_batch", "probe_envs", "icl_episodes", "robot_episodes",
                     "budget_steps", "batch_size", "eval_envs", "eval_episodes", "threads",
                     "collect_envs"):  # fmt: skip
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise AdaptkitError(f"embodiment plan: {name} must be an integer >= 1, got {v!r}")
        if self.gait_search not in GAIT_SEARCHES:
            raise AdaptkitError(f"gait_search: expected one of {', '.join(GAIT_SEARCHES)}")
        if self.icl_episodes < 3:
            raise AdaptkitError("embodiment plan: icl_episodes must be >= 3 (episode 3 vs 1)")
        if self.history_steps <= self.context_len():
            raise AdaptkitError(
                f"embodiment plan: a history ({self.noise_cycle} × {self.episode_length} steps) "
                f"must be longer than the model's context ({self.context_len()})"
            )
        for name, values in (("--ks", self.ks), ("base_seeds", self.base_seeds),
                             ("top_seeds", self.top_seeds or self.base_seeds)):  # fmt: skip
            if not values or len(set(values)) != len(values):
                raise AdaptkitError(f"{name}: give distinct values, got {list(values)}")
        get_task(self.task)
        self.cell_plan(self.modes)  # the adaptation cells' own checks, before hours of work

    # -- presets ------------------------------------------------------------------------------
    @classmethod
    def preset_named(cls, name: str) -> EmbodimentPlan:
        if name == "embodiments":
            return cls()
        if name == "embodiments-small":
            # the smallest version that still answers the questions: every K, one base seed,
            # the goal's data size (1 episode), three adaptation seeds
            return cls(preset=name, base_seeds=(0,), top_seeds=(0, 1, 2), sizes=("1ep",),
                       histories_per_body=8, pretrain_steps=600)  # fmt: skip
        if name == "embodiments-ci":
            return cls(
                preset=name,
                ks=(1, 2),
                base_seeds=(0,),
                held_out_bodies=1,
                gait_search="quick",
                episode_length=20,
                noise_cycle=2,
                histories_per_body=2,
                collect_envs=2,
                model=dict(TINY_MODEL),
                pretrain_steps=3,
                pretrain_batch=2,
                precision="fp32",
                probe_envs=2,
                icl_episodes=3,
                robots=("minicheetah",),
                sizes=("1ep",),
                modes=("frozen", "scratch"),
                seeds=(0,),
                robot_episodes=3,
                budget_steps=2,
                batch_size=2,
                eval_envs=2,
                eval_episodes=2,
            )
        raise AdaptkitError(f"--preset: expected one of {', '.join(PRESETS)}, got {name!r}")

    def replace(self, **changes: Any) -> EmbodimentPlan:
        return dataclasses.replace(self, **changes)

    # -- derived ------------------------------------------------------------------------------
    @property
    def history_steps(self) -> int:
        return self.noise_cycle * self.episode_length

    def context_len(self) -> int:
        return read_model_config(self.model).context_len

    def histories_for(self, k: int, curve: str) -> int:
        """Histories per body of base K: the same total data at every K on the budget curve."""
        if curve == "per_body":
            return self.histories_per_body
        return max(1, round(self.histories_per_body * max(self.ks) / k))

    def pretrain_steps_for(self, k: int, curve: str) -> int:
        if curve == "per_body":
            return max(1, round(self.pretrain_steps * k / max(self.ks)))
        return self.pretrain_steps

    def bases(self) -> list[tuple[int, str, int]]:
        """(K, curve, seed) of every base to build; the per_body base at the largest K is the
        budget one (same data, same steps)."""
        top = max(self.ks)
        first = self.base_seeds[0]
        every = [
            (k, c, s)
            for c in self.curves
            for k in sorted(self.ks)
            for s in (self.top_seeds or self.base_seeds if k == top else self.base_seeds)
            if not (c == "per_body" and k == top and "budget" in self.curves)
        ]
        # the first seed of every base before the others: results for each K come early
        return sorted(every, key=lambda b: (b[2] != first, CURVES.index(b[1]), b[0]))

    def family_recipe(self, histories: int) -> Recipe:
        return Recipe(
            histories=histories,
            steps_per_history=self.history_steps,
            collect_envs=self.collect_envs,
            episode_length=self.episode_length,
            noise_cycle=self.noise_cycle,
            task=self.task,
        )

    def robot_recipe(self) -> Recipe:
        """The built-in robots' data and the adaptation cells' evaluation."""
        return Recipe(
            histories=1,
            steps_per_history=self.robot_episodes * self.episode_length,
            collect_envs=4,
            precision=self.precision,
            model=dict(self.model),
            eval_envs=self.eval_envs,
            eval_episodes=self.eval_episodes,
            eval_seed=self.eval_seed,
            episode_length=self.episode_length,
            task=self.task,
        )

    def probe_settings(self, data_dir: Path, reset: bool = False) -> EvalSettings:
        return EvalSettings(
            num_envs=self.probe_envs,
            episodes=self.icl_episodes,
            seed=self.eval_seed,
            episode_length=self.episode_length,
            task=self.task,
            data_dir=data_dir,
            device="cpu",
            threads=self.threads,
            reset_context=reset,
        )

    def cell_plan(self, modes: Sequence[str]) -> StudyPlan:
        return StudyPlan(
            preset=self.preset,
            targets=self.robots,
            pool=ROBOTS,
            sizes=self.sizes,
            modes=tuple(modes),
            seeds=self.seeds,
            recipe=self.robot_recipe(),
            budget_steps=self.budget_steps,
            batch_size=self.batch_size,
            lr=self.lr,
            lora_rank=self.lora_rank,
            threads=self.threads,
            icl=False,
        )

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def data_key(self) -> dict[str, Any]:
        """What the folder's data, bases and results depend on (the axes may grow)."""
        axes = ("preset", "ks", "curves", "base_seeds", "top_seeds", "robots", "sizes", "modes",
                "seeds", "threads")  # fmt: skip
        # the largest K sets every base's data (histories_for) and which bodies are held out
        return {**{k: v for k, v in self.as_dict().items() if k not in axes}, "k_max": max(self.ks)}


def base_name(k: int, curve: str, seed: int) -> str:
    return f"k{k:03d}-{curve}-s{seed}"


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
        budget = GAIT_SEARCHES[p.gait_search]
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
                    "demonstrator_score": _spread([r.tune_score for r in accepted]),
                    "demonstrator_speed": _spread([r.speed for r in accepted]),
                    "search_seconds": _spread([r.seconds for r in records]),
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
        config = write_base_dataset_config(specs, data, f"k{k:03d}.yaml")
        ctx = p.context_len()
        stride = max(1, ctx // 4)
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
        """Zero-shot through the base's group, the context chained across episodes and reset."""
        path = self.probe_path(base.name, spec.name)
        refs = self.refs(spec)
        t0 = time.perf_counter()
        curves: dict[str, Any] = {}
        for label, reset in (("chained", False), ("reset", True)):
            settings = self.plan.probe_settings(self.robot_data, reset)
            policy = ModelPolicy.from_checkpoint(base, spec, settings, name=label)
            try:
                s = evaluate_policy(policy, policy.robot or spec, settings, label=label).summary
                group = policy.group
            finally:
                policy.close()
            per = [score_against(e["mean"], refs) for e in s["per_episode"]]
            curves[label] = {
                "normalised_score": score_against(s["mean_return"], refs),
                "per_episode_normalised": per,
                "falls": s["falls"],
                "num_episodes": s["num_episodes"],
            }
        row = {
            "base": base.name,
            "body": spec.name,
            "builtin": spec.name in ROBOTS,
            "group": group,
            # zero-shot: every episode with a fresh context; in context: the episodes chained
            "zero_shot": curves["reset"]["normalised_score"],
            "in_context": curves["chained"]["normalised_score"],
            "gain_chained": _gain(curves["chained"]["per_episode_normalised"]),
            "gain_reset": _gain(curves["reset"]["per_episode_normalised"]),
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
        study = _Study(p.cell_plan(modes), folder, self.registry, self.reporter, False,
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


def _gain(per_episode: Sequence[float | None]) -> float | None:
    if len(per_episode) < 3 or per_episode[0] is None or per_episode[2] is None:
        return None
    return per_episode[2] - per_episode[0]


def _spread(xs: Sequence[float]) -> dict[str, float] | None:
    xs = [float(x) for x in xs if x is not None and math.isfinite(x)]
    if not xs:
        return None
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / max(1, len(xs) - 1))
    return {"mean": m, "sd": sd, "min": min(xs), "max": max(xs), "n": len(xs)}


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
    with _gait_cache(plan):
        failed = EmbodimentStudy(plan, out, registry, reporter, executor, workers).run()
    write_embodiment_report(out)
    raise_failed("embodiments", failed, out)
    return out
