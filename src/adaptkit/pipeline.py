"""The main job, `adaptkit finetune ROBOT`, as one library call: base → data → add group +
freeze + fine-tune → zero-shot vs fine-tuned vs demonstrator vs standing still.

With no base named, the base is `models/base` when one was built there, else the default base
shipped in the package (adaptkit.bootstrap.ship.default_base), else built. Missing learning
histories are collected (the `Recipe`) and cached where the defaults point
(`data/<robot>_trajectories`), so the next run starts straight at fine-tuning.
Under torchrun only rank 0 builds them; the others wait.

The robot's observation layout, when no dataset config names its data: `job.obs_layout`, else
the layout that fits one of the base's groups (so the zero-shot row can exist), else the
plugin's own; with a dataset config the data's width decides (adaptkit.train.finetune).

How the new group starts, when the mode says `auto` (the default): a zero-shot probe through
every old group whose dims fit (adaptkit.evaluate.probe, seconds) picks warm from the best one
when it beats standing still, else fresh; the run and the model card record it. After the
comparison, a fine-tuned policy below zero-shot or below standing still is said in one line,
with the likely cause and the command to try next (`outcome_warning`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from adaptkit.adapt.modes import START_AUTO
from adaptkit.bootstrap.base import ensure_base_model
from adaptkit.bootstrap.data import ensure_robot_data, has_data
from adaptkit.bootstrap.in_context import shipped_in_context
from adaptkit.bootstrap.provenance import base_is_built
from adaptkit.bootstrap.rank_zero import BUILD_FAILED, build_on_rank_zero
from adaptkit.bootstrap.recipe import Recipe
from adaptkit.bootstrap.ship import SHIPPED_BASE, default_base
from adaptkit.ckpt.checkpoint import read_checkpoint_meta
from adaptkit.ckpt.fit import fit_group
from adaptkit.ckpt.layout import epoch_dirs
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate import CompareReport, EvalSettings, compare
from adaptkit.evaluate.probe import PROBE, probe_groups
from adaptkit.plugins import Registry, get_registry
from adaptkit.progress import SILENT, NoteCollector, Reporter
from adaptkit.robot import RobotSpec
from adaptkit.train import FinetuneJob, RunResult, finetune
from adaptkit.train import distributed as dd
from adaptkit.train.metrics import MetricsLogger, check_installed


@dataclass
class AdaptResult:
    finetune: RunResult
    compare: CompareReport | None
    base: Path
    notes: list[str]  # what was built on the way (collections, the base model)
    warnings: list[str] = field(default_factory=list)  # fine-tuned below zero-shot / standing
    init: dict[str, Any] | None = None  # how the new group started (the probe's record)


def _in_context_for(robot: RobotSpec) -> Path | None:
    """The shipped in-context base when one is shipped and a group of it reads the robot in the
    layout its data are in (a fork-layout robot's 33-dim data has none), else None."""
    base = shipped_in_context()
    if base is None:
        return None
    fitted, _ = base_layout(robot.plugin_spec, base)
    return base if fitted.obs_layout == robot.obs_layout else None


def base_layout(spec: RobotSpec, base: Path) -> tuple[RobotSpec, str]:
    """The robot in the layout that fits one of the base's groups (reading only its metadata),
    else in its plugin's own layout; and why."""
    meta = read_checkpoint_meta(base)
    try:
        group, fitted = fit_group(meta, spec.plugin_spec, None)
    except AdaptkitError:
        return spec.plugin_spec, "the robot plugin's own (no single base group fits another)"
    dims = meta.groups[group]
    return fitted, f"fits the base's group '{group}' ({dims.obs_dim} obs dims)"


def adapt(
    job: FinetuneJob,
    registry: Registry | None = None,
    recipe: Recipe = Recipe(),
    evaluate: bool = True,
    evaluation: EvalSettings | None = None,
    reporter: Reporter = SILENT,
    in_context: bool = True,
) -> AdaptResult:
    """Fine-tune `job.robot` as a new group of a pretrained model, then compare it with zero-shot.

    Missing defaults are built (see the module docstring); anything the job names explicitly
    must exist (`data_dir=None` means `data/`, created if needed). `evaluation` (default: the
    recipe's held-out settings) drives the comparison of zero-shot, fine-tuned, demonstrator and
    standing still afterwards — and, with `in_context` and the in-context base shipped, that
    base on the robot with no gradient step; a row no group fits is reported not applicable.
    Under torchrun rank 0 builds the defaults while the other ranks wait, every rank
    fine-tunes, and rank 0 alone runs the comparison. A failure after training says where the
    trained checkpoints are.
    """
    registry = registry if registry is not None else get_registry()
    rank, world = dd.launch_rank()
    reporter = reporter if rank == 0 else SILENT  # one copy of every note under torchrun
    built = NoteCollector(reporter)
    # A data dir named by the caller must exist (a typo should not start a long collection);
    # the default one is created and filled on first use.
    if job.data_dir is not None and not job.data_dir.is_dir():
        raise AdaptkitError(f"--data-dir {job.data_dir}: does not exist")
    check_installed(job.log)  # before minutes of building, not after
    data_dir = job.data_folder
    if job.obs_layout is not None:
        job.robot.for_layout(job.obs_layout)  # a bad --obs-layout fails before anything is built
    base = job.pretrained_path or default_base(job.save_dir, recipe)
    if base == SHIPPED_BASE:
        reporter.note(f"base: the default base shipped with adaptkit ({base})")
    if isinstance(base, Path) and job.pretrained_path is not None and not base.exists():
        # a named base must exist before minutes of collecting data for it
        raise AdaptkitError(f"checkpoint {job.pretrained_path}: no such file or directory")

    def data_robot(note: bool = False) -> RobotSpec:
        """The robot in the layout its data is (to be) collected in: --obs-layout, else the
        one that fits a group of the (built) base."""
        if job.obs_layout is not None:
            return job.robot.for_layout(job.obs_layout)
        robot, why = base_layout(job.robot, base)
        if note and robot is not robot.plugin_spec:
            reporter.note(
                f"'{robot.name}' in observation layout {robot.obs_layout} ({robot.obs_dim} "
                f"dims): {why}; --obs-layout to choose"
            )
        return robot

    def build() -> None:
        if job.pretrained_path is None:
            ensure_base_model(base, data_dir, registry, recipe, built, job.device)
        if not job.dataset_config_paths:
            ensure_robot_data(data_robot(note=True), data_dir, recipe, built)

    def ready() -> bool:
        if job.pretrained_path is None and not base_is_built(base):
            return False
        return bool(job.dataset_config_paths) or has_data(data_robot(), data_dir)

    if world == 1:
        build()
    else:
        build_on_rank_zero(build, ready, job.save_dir / BUILD_FAILED, rank)
    robot = job.robot if job.dataset_config_paths else data_robot()
    known = tuple(s for s in registry.robots.values() if s.name != robot.name)
    job = replace(job, robot=robot, pretrained_path=base, data_dir=data_dir, known_robots=known)
    resuming = job.resume and bool(epoch_dirs(job.save_dir / job.run_name))
    if job.choice.start == START_AUTO and not resuming:  # every rank probes alike: same choice
        settings = replace(PROBE, task=recipe.task)
        probe = probe_groups(base, robot, settings, data_dir, known, reporter)
        reporter.note(f"--init auto: {probe.why} ({probe.seconds:.1f} s)")
        job = replace(job, init=probe.init, init_record=probe.record())
    metrics = MetricsLogger(job.log)  # open from training through the comparison
    warnings: list[str] = []
    try:
        result = finetune(job, reporter, metrics)
        report = None
        # rank 0 alone compares: every rank would roll out the same envs into the same files
        if evaluate and rank == 0 and result.last_checkpoint is not None:
            settings = evaluation or recipe.eval_settings()
            try:
                models = [("zero-shot", base), ("fine-tuned", result.last_checkpoint)]
                trained = result.robot or robot  # in the layout of the data it trained on
                in_context_base = _in_context_for(trained) if in_context else None
                if in_context_base is not None:
                    # the in-context base on the robot, no gradient step (docs/in_context.md)
                    models.insert(1, ("in context", in_context_base))
                report = compare(
                    result.robot or robot,
                    models,
                    # the fine-tuned checkpoint records its order; the base is settled as before
                    replace(settings, data_dir=data_dir, token_order=job.token_order),
                    out_dir=result.run_dir / "compare",
                    reporter=reporter,
                    robots=known,
                )
            except Exception as exc:
                where = (
                    f"training finished: the trained checkpoints are in {result.run_dir} "
                    f"(newest {result.last_checkpoint})"
                )
                if isinstance(exc, AdaptkitError):
                    raise AdaptkitError(f"comparison failed: {exc} — {where}") from None
                reporter.note(where)
                raise
            metrics.log_summary(result.steps, "eval", eval_summary(report))
            warning = outcome_warning(report, job)
            if warning:  # the caller shows it after the table (AdaptResult.warnings)
                warnings.append(warning)
                metrics.log_summary(result.steps, "warning", {"message": warning})
    finally:
        metrics.close()
    return AdaptResult(
        finetune=result,
        compare=report,
        base=base,
        notes=built.notes,
        warnings=warnings,
        init=job.init_record or {"init": job.choice.init},
    )


TOLERANCE = 0.02  # normalised score: "below zero-shot" means by more than this


def outcome_warning(report: CompareReport, job: FinetuneJob) -> str | None:
    """One line when the fine-tuned policy ends below zero-shot (by more than TOLERANCE) or
    below standing still: by how much, the likely cause and the command to try next."""
    rows = {row["label"]: row for row in report.rows}
    ft = (rows.get("fine-tuned") or {}).get("normalised_score")
    zs_row = rows.get("zero-shot") or {}
    zs = zs_row.get("normalised_score")
    if ft is None:
        return None
    robot, name = job.robot.name, job.run_name
    init = (job.init_record or {}).get("init") or job.choice.init
    if zs is not None and ft < zs - TOLERANCE:
        demo = (rows.get("demonstrator") or {}).get("mean_return")
        zs_return = zs_row.get("mean_return")
        if (
            init.startswith("warm")
            and demo is not None
            and zs_return is not None
            and (zs_return > demo)
        ):
            cause = (
                "the base zero-shot walks better than the robot's demonstrator, which the "
                "fine-tune imitates"
            )
            nxt = f"adaptkit tune-robot {robot} --rounds 8 (a better demonstrator), then again"
        elif init.startswith("warm"):
            cause = "training moved the warm-started group away from a better zero-shot policy"
            nxt = f"adaptkit finetune {robot} --epochs 3 --name {name}_short"
        else:
            group = zs_row.get("group") or "GROUP"
            cause = "the new group started fresh and its histories were too few to catch up"
            nxt = f"adaptkit finetune {robot} --init warm:{group} --name {name}_warm"
        return (
            f"fine-tuned ({ft:.2f} normalised) ends below zero-shot ({zs:.2f}): likely {cause}; "
            f"try `{nxt}`"
        )
    if ft < 0:
        return (
            f"fine-tuned ({ft:.2f} normalised) ends below standing still: likely the "
            f"histories do not teach a walk; check the demonstrator (`adaptkit demonstrator "
            f"{robot}`) and derive it again (`adaptkit tune-robot {robot}`)"
        )
    return None


EVAL_KEYS = (
    "mean_return",
    "std_return",
    "pct_demonstrator",
    "normalised_score",
    "mean_speed",
    "falls",
    "fall_rate",
    "num_episodes",
    "per_episode_mean",
)


def eval_summary(report: CompareReport) -> dict[str, Any]:
    """The comparison table as a metrics summary: {label: {mean_return, % demonstrator, ...}}."""
    return {row["label"]: {k: row[k] for k in EVAL_KEYS if k in row} for row in report.rows}
