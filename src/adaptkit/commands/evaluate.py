"""`adaptkit eval` and `adaptkit compare`: parse, call adaptkit.evaluate, render with rich."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from adaptkit.commands.render import console, err_console, print_json, table
from adaptkit.errors import AdaptkitError

EPOCH_RE = re.compile(r"^\d+_epoch$")


def _fmt(x: Any, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


@contextmanager
def eval_progress(enabled: bool) -> Iterator[Callable[[str], Callable[[int, int], None] | None]]:
    """Yields make(label) -> per-run callback(step, total); the bar goes to stderr."""
    if not enabled:
        yield lambda label: None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    with bar:

        def make(label: str) -> Callable[[int, int], None]:
            task = bar.add_task(label, total=None)

            def update(step: int, total: int) -> None:
                bar.update(task, completed=step, total=total)

            return update

        yield make


def _steps_args(episodes: int | None, max_steps: int | None) -> tuple[int | None, int | None]:
    # --max-steps alone (the seed's spelling): every complete episode within that many steps
    if episodes is None and max_steps is None:
        return 3, None
    return episodes, max_steps


def _check_threads(threads: int) -> None:
    if threads < 1:
        raise AdaptkitError(f"--threads: must be >= 1, got {threads}")


def eval_cmd(
    checkpoint: Path | None = typer.Argument(
        None, help="Checkpoint: an NNNN_epoch folder or a run folder (latest epoch)."
    ),
    vintix_path: Path | None = typer.Option(
        None, "--vintix-path", "--vintix_path", help="The checkpoint, as an option (seed spelling)."
    ),
    robot: str = typer.Option(..., "--robot", "--robot_type", "--robot-type", help="Robot name."),
    num_envs: int = typer.Option(16, "--num-envs", "--num_envs", help="Parallel envs."),
    max_steps: int | None = typer.Option(
        None, "--max-steps", "--max_steps", help="Control steps (default episodes × length)."
    ),
    episodes: int | None = typer.Option(
        None, "--episodes", help="Episodes per env in one context (default 3)."
    ),
    group: str | None = typer.Option(None, "--group", help="Zero-shot: the group to run through."),
    context_len: int | None = typer.Option(
        None, "--context-len", "--context_len", help="KV-cache window (default: checkpoint's)."
    ),
    episode_length: int | None = typer.Option(
        None, "--episode-length", "--episode_length", help="Steps per episode (env default 1000)."
    ),
    data_dir: Path = typer.Option(
        Path("data"),
        "--data-dir",
        "--data_dir",
        help="Zero-shot stats come from the robot's data here (else: checkpoint task average).",
    ),
    seed: int = typer.Option(0, "--seed", help="Env seed."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default eval/ROBOT)."),
    parallel: bool = typer.Option(
        False, "--parallel", help="Accepted for the seed's spelling; envs are always batched."
    ),
    threads: int = typer.Option(
        1, "--threads", help="torch threads for the model on CPU (1: no fight with MuJoCo's)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """In-context evaluation: all envs batched, one KV-cached forward per control step."""
    from adaptkit.evaluate import evaluate

    ckpt = checkpoint or vintix_path
    if ckpt is None:
        raise AdaptkitError("give the checkpoint: CKPT or --vintix_path")
    if checkpoint is not None and vintix_path is not None and checkpoint != vintix_path:
        raise AdaptkitError("--vintix_path: conflicts with the CKPT argument; give one")
    episodes, max_steps = _steps_args(episodes, max_steps)
    _check_threads(threads)
    out = out or Path("eval") / robot
    with eval_progress(not json_out) as make:
        report = evaluate(
            ckpt,
            robot,
            num_envs=num_envs,
            episodes=episodes,
            max_steps=max_steps,
            context_len=context_len,
            seed=seed,
            group=group,
            out_dir=out,
            data_dir=data_dir,
            episode_length=episode_length,
            label=_label(Path(ckpt)),
            progress=make(f"eval {robot}"),
            threads=threads,
        )
    s = report.summary
    if json_out:
        print_json({**s, "files": {k: str(v) for k, v in report.files.items()}})
        return
    console.print(
        f"[bold]{robot}[/] via group [cyan]{s['group']}[/] ({s['mode']}); "
        f"stats: {s['stats_source']}; context {s['context_len']}",
        highlight=False,
    )
    rows = [
        (p["episode"] + 1, p["n"], _fmt(p["mean"]), _fmt(p["std"]), _fmt(p["speed"]), p["falls"])
        for p in s["per_episode"]
    ]
    cols = ["episode", "envs", "return", "± std", "speed m/s", "falls"]
    console.print(table(f"{robot}: return per episode in context", cols, rows))
    console.print(
        f"mean return {_fmt(s['mean_return'])} ± {_fmt(s['std_return'])}, speed "
        f"{_fmt(s['mean_speed'])} m/s, falls {s['falls']}/{s['num_episodes']}; "
        f"{s['steps_per_s']:.0f} env-steps/s (policy {s['policy_ms_per_step']:.1f} ms, "
        f"sim {s['sim_ms_per_step']:.1f} ms per step)",
        highlight=False,
    )
    console.print(f"wrote {', '.join(str(p) for p in report.files.values())}", highlight=False)


def compare_cmd(
    robot: str = typer.Option(..., "--robot", "--robot_type", "--robot-type", help="Robot name."),
    models: list[str] = typer.Argument(
        None, help="Checkpoints, each PATH or LABEL=PATH (e.g. zero-shot=base ft=run/0005_epoch)."
    ),
    models_flag: bool = typer.Option(
        False, "--models", "--model", help="Optional marker: `--models A B` reads A B as models."
    ),
    labels: list[str] = typer.Option(
        [], "--labels", "--label", help="Labels, comma-separated or repeated, one per model."
    ),
    demonstrator: bool = typer.Option(
        True, "--demonstrator/--no-demonstrator", help="Include the demonstrator."
    ),
    stand: bool = typer.Option(True, "--stand/--no-stand", help="Include standing still."),
    num_envs: int = typer.Option(16, "--num-envs", "--num_envs"),
    max_steps: int | None = typer.Option(None, "--max-steps", "--max_steps"),
    episodes: int | None = typer.Option(None, "--episodes", help="Episodes per env (default 3)."),
    group: str | None = typer.Option(None, "--group", help="Zero-shot group for models lacking R."),
    context_len: int | None = typer.Option(None, "--context-len", "--context_len"),
    episode_length: int | None = typer.Option(None, "--episode-length", "--episode_length"),
    data_dir: Path = typer.Option(
        Path("data"), "--data-dir", "--data_dir", help="Robot data, for zero-shot stats."
    ),
    seed: int = typer.Option(0, "--seed"),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default compare/ROBOT)."),
    threads: int = typer.Option(
        1, "--threads", help="torch threads for the model on CPU (1: no fight with MuJoCo's)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the table as JSON."),
) -> None:
    """Zero-shot vs fine-tuned vs demonstrator vs standing: same seeds, one table and plot."""
    from adaptkit.evaluate import compare

    named = _named_models(models or [], labels)
    episodes, max_steps = _steps_args(episodes, max_steps)
    _check_threads(threads)
    out = out or Path("compare") / robot
    with eval_progress(not json_out) as make:
        rep = compare(
            robot,
            named,
            demonstrator=demonstrator,
            stand=stand,
            num_envs=num_envs,
            episodes=episodes,
            max_steps=max_steps,
            seed=seed,
            out_dir=out,
            group=group,
            context_len=context_len,
            data_dir=data_dir,
            episode_length=episode_length,
            progress=make,
            threads=threads,
        )
    if json_out:
        print_json({"table": rep.rows, "files": {k: str(v) for k, v in rep.files.items()}})
        return
    render_compare(rep, f"{robot}: seed {seed}, {num_envs} envs")


def render_compare(rep: Any, title: str) -> None:
    """The comparison table (one row per policy) and the files written."""
    rows = [
        (
            r["label"],
            r["mode"] or "-",
            f"{_fmt(r['mean_return'])} ± {_fmt(r['std_return'])}",
            " / ".join(_fmt(m) for m in r["per_episode_mean"]),
            _fmt(r["pct_demonstrator"], 1),
            _fmt(r["normalised_score"]),
            _fmt(r["mean_speed"]),
            f"{r['falls']}/{r['num_episodes']}",
        )
        for r in rep.rows
    ]
    cols = ["policy", "mode", "return", "per episode", "% demo", "norm", "speed", "falls"]
    console.print(table(title, cols, rows))
    console.print(f"wrote {', '.join(str(p) for p in rep.files.values())}", highlight=False)


def _named_models(models: list[str], labels: list[str]) -> list[tuple[str, Path]]:
    """(label, path) per model from `LABEL=PATH` / `PATH` and --labels; names must be unique."""
    if not models:
        raise AdaptkitError("--models: give at least one checkpoint")
    pairs = [m.split("=", 1) if "=" in m else (None, m) for m in models]
    paths = [Path(p) for _, p in pairs]
    flat = [x.strip() for label in labels for x in label.split(",") if x.strip()]
    if flat and len(flat) != len(models):
        raise AdaptkitError(f"--labels: got {len(flat)} labels for {len(models)} models")
    defaults = [_label(p) for p in paths]
    out = []
    for i, ((given, _), path) in enumerate(zip(pairs, paths, strict=True)):
        default = defaults[i] if defaults.count(defaults[i]) == 1 else str(path)
        out.append((flat[i] if flat else given or default, path))
    return out


def _label(path: Path) -> str:
    """`run/0005_epoch` for an epoch folder (the run names it), else the folder's name."""
    return f"{path.parent.name}/{path.name}" if EPOCH_RE.match(path.name) else path.name


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("eval")(eval_cmd)
    app.command("compare")(compare_cmd)
