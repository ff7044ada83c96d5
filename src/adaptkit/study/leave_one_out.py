"""The leave-one-out study's runner (`LeaveOneOutStudy`, `run_study`): each target robot
adapted to a base pretrained without it, every cell of the plan run into a resumable folder.
The embodiment study runs its adaptation cells through it too, on its own bases and data.

    OUT/plan.json           the plan (a rerun must agree on what the results depend on)
    OUT/data/               learning histories of every robot (collected once) and the subsets
    OUT/bases/<robots>/     one base per robot set (the pipeline's base building, resumable)
    OUT/refs/<robot>.json   demonstrator, standing still and the base zero-shot, held-out seed
    OUT/cells/<id>.json     one finished cell each, written atomically; a rerun skips them
    OUT/icl.json            the in-context stage
    OUT/claims/             which runner is running which job now (adaptkit.execute)
    OUT/report.md, summary.json, study.png, icl.png   (adaptkit.study.report)

Training runs go to OUT/runs/<id>/ and are removed once their cell is written (a cell cut short
is started again from nothing: its run folder is the study's own scratch space).

Everything runs as jobs of `adaptkit.execute` (in this process, local workers or Ray tasks), in
three waves, each a set of independent jobs whose results the next reads from OUT: every pool
robot's collection; per target its base, data subsets and references (`prepare_target`); then
the cells and the in-context stage. Each job function is module-level and rebuilds what it needs
from OUT, so any worker on any node sharing OUT can run it.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adaptkit.adapt.modes import Mode, get_mode
from adaptkit.bootstrap.base import ensure_base_model
from adaptkit.bootstrap.data import collection_job, robot_data_folder
from adaptkit.bootstrap.provenance import read_provenance
from adaptkit.ckpt.checkpoint import read_checkpoint_meta
from adaptkit.ckpt.layout import latest_checkpoint
from adaptkit.data.config import write_dataset_config
from adaptkit.data.history import (
    list_history_files,
    read_history,
)
from adaptkit.data.subset import write_subset
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate import EvalSettings, ModelPolicy, evaluate_policy
from adaptkit.evaluate.report import reference_rows
from adaptkit.evaluate.score import score_against
from adaptkit.execute import Job, RunSummary, keep_workers, raise_failed, run_wave
from adaptkit.fileio import read_json, write_json
from adaptkit.plugins import Registry, get_registry, plugin_files, worker_registry
from adaptkit.progress import SILENT, Reporter
from adaptkit.robot import RobotSpec
from adaptkit.study.cell_training import train_cell
from adaptkit.study.common import check_plan_file
from adaptkit.study.plan import Cell, StudyPlan
from adaptkit.study.report import read_cell, write_report

EPISODES_OF = {"1ep": 1, "10ep": 10}  # the other sizes: one history, all histories
ICL_MODE = "frozen"  # the in-context stage adapts its long-context base with the trunk frozen


def run_study(
    plan: StudyPlan,
    out: Path | str,
    registry: Registry | None = None,
    reporter: Reporter = SILENT,
    keep_runs: bool = False,
    executor: str = "local",
    workers: int | None = None,
) -> Path:
    """Run every cell of `plan` not yet in `out`, the in-context stage, and write the report,
    on `executor` (adaptkit.execute: "inline", "local", "ray:auto", "ray:ADDRESS"; `workers`
    for local: default as many as the cores allow). Returns `out`; if a job failed, the report
    of the finished cells is still written, then an AdaptkitError names the failed jobs."""
    registry = registry if registry is not None else get_registry()
    out = Path(out).resolve()  # workers (a Ray node) may start in another folder
    _check_plan(plan, out)
    study = LeaveOneOutStudy(plan, out, registry, reporter, keep_runs)
    with keep_workers():  # local workers started once, reused by every wave
        failed = study.run(executor, workers)
    write_report(out)
    raise_failed("study", failed, out)
    return out


def _check_plan(plan: StudyPlan, out: Path) -> None:
    check_plan_file(out, plan.as_dict(), plan.data_key())


class LeaveOneOutStudy:
    """A StudyPlan run into OUT in waves of jobs (`run`); each job rebuilds its study from OUT
    (the module-level job functions below). `given_base`: one base for every target instead of
    leave-one-out bases built here, and `data`: the robots' histories elsewhere than OUT/data
    (both: the embodiment study's cells, on its bases)."""

    def __init__(
        self,
        plan: StudyPlan,
        out: Path,
        registry: Registry,
        reporter: Reporter,
        keep_runs: bool,
        given_base: Path | None = None,
        data: Path | None = None,
    ) -> None:
        self.plan, self.out, self.registry = plan, out, registry
        self.reporter, self.keep_runs = reporter, keep_runs
        self.given_base = given_base
        self.data = data if data is not None else out / "data"
        self.data.mkdir(parents=True, exist_ok=True)

    # -- building blocks ----------------------------------------------------------------------
    def base(self, target: str, context: int | None = None) -> Path:
        if self.given_base is not None and context is None:
            return self.given_base
        robots = "+".join(sorted(self.plan.base_robots(target)))
        name = robots if context is None else f"{robots}-ctx{context}"
        path = self.out / "bases" / name
        t0 = time.perf_counter()
        built = latest_checkpoint(path) is not None
        ensure_base_model(
            path, self.data, self.registry, self.plan.base_recipe(target, context), self.reporter
        )
        if not built:
            self.reporter.note(f"base {name}: {time.perf_counter() - t0:.0f} s")
        return path

    def target_spec(self, target: str, base: Path) -> RobotSpec:
        """The robot as a new group of its base: its plugin's group, unless the base already
        has that group (Go1/Go2/A1 share one), then `<robot>_locomotion`."""
        spec = self.registry.robot(target)
        meta = read_checkpoint_meta(base)
        if spec.group in meta.groups:
            spec = dataclasses.replace(spec, group=f"{spec.name}_locomotion")
        if spec.group in meta.groups:
            raise AdaptkitError(f"study: base {base} already has group {spec.group!r}")
        return spec

    def subset(self, spec: RobotSpec, size: str) -> tuple[Path, list[int]]:
        """The dataset config of the robot's data subset (and the subset's history lengths):
        1ep / 10ep are the last episodes of history 0 (its low-noise end), 1hist history 0,
        all every history."""
        source = robot_data_folder(spec, self.data)
        files = list_history_files(source)
        cfg = self.out / "configs" / f"{spec.name}_{size}.yaml"
        if size == "all":
            folder, chosen = source, files
        else:
            folder = self.data / "subsets" / f"{spec.name}_{size}"
            chosen = [write_subset(files[0], folder, EPISODES_OF.get(size))]
        entry = spec.dataset_entry()[spec.task]
        entry["path"] = str(folder.relative_to(self.data))
        if not cfg.is_file():
            cfg.parent.mkdir(parents=True, exist_ok=True)
            write_dataset_config(cfg, {spec.task: entry})
        return cfg, [len(read_history(p).reward) for p in chosen]

    def eval_settings(self, **changes: Any) -> EvalSettings:
        return self.plan.eval_settings(data_dir=self.data, device="cpu", **changes)

    def refs(self, spec: RobotSpec, base: Path) -> dict[str, Any]:
        """Demonstrator, standing still and the base zero-shot on the held-out seed (cached)."""
        path = self.refs_path(spec.name)
        if path.is_file():
            return read_json(path)
        settings = self.eval_settings()
        out = reference_rows(spec, settings)
        plugin = self.registry.robot(spec.name)
        try:  # the base through the group of the robot's kin (or the one that fits)
            policy = ModelPolicy.from_checkpoint(base, plugin, settings, name="zero-shot")
            out["zero-shot"] = evaluate_policy(
                policy, policy.robot or plugin, settings, label="zero-shot"
            ).summary
            out["zero-shot"]["group"] = policy.group
        except AdaptkitError as exc:
            out["zero-shot"] = {"mean_return": None, "note": str(exc)}
        write_json(path, out)
        return out

    # -- cells --------------------------------------------------------------------------------
    def train(
        self,
        cell: Cell,
        spec: RobotSpec,
        base: Path,
        cfg: Path,
        lengths: list[int],
        context: int | None = None,
        mode: Mode | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Train one cell's model in its adaptation mode (`mode`: another than the cell's
        name says, e.g. the in-context stage's); returns the run result and the cell's
        training facts (adaptkit.study.cell_training)."""
        runs = self.out / "runs"
        shutil.rmtree(runs / cell.id, ignore_errors=True)  # a cell cut short starts again
        return train_cell(
            self.plan, cell, mode or get_mode(cell.mode), spec, base, cfg, lengths,
            runs=runs, data=self.data, registry=self.registry, context=context,
        )  # fmt: skip

    def evaluate(self, ckpt: Path, spec: RobotSpec, label: str, **changes: Any) -> dict[str, Any]:
        settings = self.eval_settings(**changes)
        policy = ModelPolicy.from_checkpoint(ckpt, spec, settings, name=label)
        try:
            return evaluate_policy(policy, policy.robot or spec, settings, label=label).summary
        finally:
            policy.close()

    def cell(self, cell: Cell, spec: RobotSpec, base: Path, refs: dict[str, Any]) -> None:
        path = self.cell_path(cell)
        t0 = time.perf_counter()
        cfg, lengths = self.subset(spec, cell.size)
        result, facts = self.train(cell, spec, base, cfg, lengths)
        t1 = time.perf_counter()
        summary = self.evaluate(result.last_checkpoint, spec, cell.id)
        t2 = time.perf_counter()
        write_json(
            path,
            {
                **dataclasses.asdict(cell),
                "id": cell.id,
                "base": None if get_mode(cell.mode).scratch else base.name,
                "group": spec.group,
                "normalised_score": score_against(summary["mean_return"], refs),
                "mean_return": summary["mean_return"],
                "falls": summary["falls"],
                "num_episodes": summary["num_episodes"],
                "per_episode_mean": [e["mean"] for e in summary["per_episode"]],
                "mean_speed": summary.get("mean_speed"),
                "train_seconds": round(t1 - t0, 2),
                "eval_seconds": round(t2 - t1, 2),
                "wall_seconds": round(t2 - t0, 2),
                **facts,
            },
        )
        if not self.keep_runs:
            shutil.rmtree(result.run_dir, ignore_errors=True)

    def _finished(self, cell: Cell) -> bool:
        """The cell's JSON is there and whole; a truncated or mistyped one is run again (its
        file is replaced atomically when the cell ends)."""
        path = self.out / "cells" / f"{cell.id}.json"
        if not path.is_file():
            return False
        try:
            read_cell(path)
        except AdaptkitError as exc:
            self.reporter.note(f"study: {exc}: running that cell again")
            path.unlink(missing_ok=True)  # else the executor would take it for done
            return False
        return True

    # -- the whole study ----------------------------------------------------------------------
    def run(self, executor: str, workers: int | None) -> dict[str, str]:
        """The three waves (module docstring); returns {job id: error} of the jobs that failed
        (a target whose preparation failed gets no cells)."""
        p, out = self.plan, self.out
        files = plugin_files(self.registry)
        failed: dict[str, str] = {}

        def wave(name: str, jobs: list[Job]) -> RunSummary:
            claims = out / "claims"
            return run_wave(
                f"study: {name}", jobs, claims, executor, workers, self.reporter, failed
            )

        collect = [
            collection_job(self.registry.robot(r), self.data, p.recipe, files) for r in p.pool
        ]
        if not wave("collection", collect).ok:
            return failed
        cells = [c for c in p.cells() if not self._finished(c)]
        need_icl = p.icl and not (out / "icl.json").is_file()
        targets = [t for t in p.targets if any(c.robot == t for c in cells)]
        if need_icl and p.icl_target not in targets:
            targets.append(p.icl_target)
        common = {"out": str(out), "plan": p, "plugin_files": files, "where": self.where()}
        keep = {**common, "keep_runs": self.keep_runs}
        job = functools.partial(Job, threads=p.threads)
        prepare = [
            job(f"prepare-{t}", self.refs_path(t), prepare_target, {**common, "target": t})
            for t in targets
        ]
        wave("bases and references", prepare)
        ready = {t for t in p.targets if self.refs_path(t).is_file()}
        jobs = [
            job(c.id, self.cell_path(c), run_cell, {**keep, "cell": c})
            for c in p.cells()
            if c.robot in ready
        ]
        if p.icl and p.icl_target in ready:
            jobs.append(job("icl", out / "icl.json", run_icl, keep))
        wave("cells" + (" and the in-context stage" if p.icl else ""), jobs)
        return failed

    def where(self) -> dict[str, str | None]:
        """What a worker needs besides OUT and the plan to rebuild this study."""
        return {
            "given_base": str(self.given_base) if self.given_base is not None else None,
            "data": str(self.data),
        }

    def cell_path(self, cell: Cell) -> Path:
        return self.out / "cells" / f"{cell.id}.json"

    def refs_path(self, robot: str) -> Path:
        return self.out / "refs" / f"{robot}.json"

    def prepare(self, target: str) -> tuple[Path, RobotSpec, dict[str, Any]]:
        """The target's base, its spec as a new group of it, its data subsets, and the
        references (written last: the preparation's done file)."""
        base = self.base(target)
        spec = self.target_spec(target, base)
        for size in {*self.plan.sizes, self.plan.icl_size}:
            self.subset(spec, size)
        return base, spec, self.refs(self.registry.robot(target), base)

    def icl(self, target: str, spec: RobotSpec, refs: dict[str, Any]) -> None:
        """A base whose context spans ≥ 3 episodes, its frozen-trunk adaptation on one history,
        evaluated with the episodes chained in one context and with it reset between them."""
        p = self.plan
        length = p.recipe.episode_length
        self.reporter.note(
            f"study: in-context stage, {target}, context {p.icl_context} "
            f"({p.icl_context / length:.1f} episodes of {length} steps)"
        )
        t0 = time.perf_counter()
        base = self.base(target, p.icl_context)
        t_base = time.perf_counter() - t0
        cfg, lengths = self.subset(spec, p.icl_size)
        # trained as a frozen-trunk cell ("icl" names its run folder)
        run = Cell(target, p.icl_size, "icl", p.seeds[0])
        result, facts = self.train(
            run, spec, base, cfg, lengths, context=p.icl_context, mode=get_mode(ICL_MODE)
        )
        t1 = time.perf_counter()
        curves = {}
        for label, reset in (("chained", False), ("reset", True)):
            s = self.evaluate(
                result.last_checkpoint,
                spec,
                label,
                episodes=p.icl_episodes,
                context_len=facts["context_len"],
                reset_context=reset,
            )
            per = [e["mean"] for e in s["per_episode"]]
            curves[label] = {
                "per_episode_mean": per,
                "per_episode_normalised": [score_against(r, refs) for r in per],
                "normalised_score": score_against(s["mean_return"], refs),
                "falls": s["falls"],
                "num_episodes": s["num_episodes"],
            }
        t2 = time.perf_counter()
        chained = curves["chained"]["per_episode_normalised"]
        gain = chained[2] - chained[0] if len(chained) >= 3 and None not in chained[:3] else None
        base_meta = read_provenance(base) or {}
        write_json(
            self.out / "icl.json",
            {
                "robot": target,
                "size": p.icl_size,
                "context_len": facts["context_len"],
                "episode_length": p.recipe.episode_length,
                "episodes_in_context": facts["context_len"] / p.recipe.episode_length,
                "curves": curves,
                "gain_ep3_vs_ep1": gain,  # in units of the stand → demonstrator gap
                "goal_met": gain is not None and gain >= 0.1,
                "base_seconds": base_meta.get("seconds", round(t_base, 2)),
                "base_seconds_short_context": (read_provenance(self.base_path(target)) or {}).get(
                    "seconds"
                ),
                "train_seconds": round(t1 - t0 - t_base, 2),
                "eval_seconds": round(t2 - t1, 2),
                **{k: facts[k] for k in ("steps", "final_loss", "stride", "data_steps")},
            },
        )
        if not self.keep_runs:
            shutil.rmtree(result.run_dir, ignore_errors=True)

    def base_path(self, target: str) -> Path:
        return self.out / "bases" / "+".join(sorted(self.plan.base_robots(target)))


# -- job functions (adaptkit.execute): module-level, each rebuilding its study from OUT --------
def _study(
    out: str,
    plan: StudyPlan,
    plugin_files: Sequence[str],
    keep_runs: bool,
    where: dict[str, str | None],
) -> LeaveOneOutStudy:
    base, data = where.get("given_base"), where.get("data")
    return LeaveOneOutStudy(
        plan,
        Path(out),
        worker_registry(plugin_files),
        SILENT,
        keep_runs,
        Path(base) if base else None,
        Path(data) if data else None,
    )


def prepare_target(
    out: str,
    plan: StudyPlan,
    target: str,
    plugin_files: Sequence[str],
    where: dict[str, str | None],
) -> None:
    """A target's base, subsets and references (OUT/refs/<target>.json, written last)."""
    _study(out, plan, plugin_files, False, where).prepare(target)


def run_cell(
    out: str,
    plan: StudyPlan,
    cell: Cell,
    plugin_files: Sequence[str],
    keep_runs: bool,
    where: dict[str, str | None],
) -> None:
    """One cell into OUT/cells/<id>.json, from its prepared base, subset and references."""
    study = _study(out, plan, plugin_files, keep_runs, where)
    base, spec, refs = study.prepare(cell.robot)  # all there already: read, not built
    study.cell(cell, spec, base, refs)


def run_icl(
    out: str,
    plan: StudyPlan,
    plugin_files: Sequence[str],
    keep_runs: bool,
    where: dict[str, str | None],
) -> None:
    """The in-context stage into OUT/icl.json."""
    study = _study(out, plan, plugin_files, keep_runs, where)
    _, spec, refs = study.prepare(plan.icl_target)
    study.icl(plan.icl_target, spec, refs)
