"""`adaptkit eval` and `adaptkit compare`: parse into EvalSettings, call the library, render."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from adaptkit import defaults as D
from adaptkit.ckpt.layout import EPOCH_RE
from adaptkit.commands import flags
from adaptkit.commands.config_file import (
    OPT_CONFIG,
    OPT_PRINT_CONFIG,
    ConfigCommand,
    save_resolved,
)
from adaptkit.commands.registry import complete_robot
from adaptkit.commands.render import RichReporter, console, fmt, print_json, render_compare, table
from adaptkit.defaults import KVDtype, Sim, TokenOrderChoice
from adaptkit.errors import AdaptkitError
from adaptkit.plugins import get_registry
from adaptkit.tasks import DEFAULT_TASK

# Rollout options shared by both commands (each declared once).
OPT_ROBOT = typer.Option(
    ...,
    "--robot",
    "--robot_type",
    "--robot-type",
    help="Robot name.",
    autocompletion=complete_robot,
)
OPT_ROBOT_RECORDED = typer.Option(
    None,
    "--robot",
    "--robot_type",
    "--robot-type",
    help="Robot name.",
    show_default="the one the run or the exported file records",
    autocompletion=complete_robot,
)
OPT_ENVS = typer.Option(D.NUM_ENVS, "--num-envs", "--num_envs", min=1, help="Parallel envs.")
OPT_MAX_STEPS = typer.Option(
    None,
    "--max-steps",
    "--max_steps",
    min=1,
    help="Control steps; alone, every complete episode within them.",
    show_default="episodes × episode length",
)
OPT_EPISODES = typer.Option(
    None,
    "--episodes",
    min=1,
    help="Episodes per env, in one context.",
    show_default=str(D.EPISODES),
)
OPT_GROUP = typer.Option(
    None,
    "--group",
    help="Zero-shot: the group to run a robot the checkpoint lacks through.",
    show_default="the one whose dims fit",
)
OPT_CONTEXT = typer.Option(
    None,
    "--context-len",
    "--context_len",
    min=1,
    help="KV-cache window.",
    show_default="the checkpoint's context_len",
)
OPT_EPISODE_LENGTH = typer.Option(
    None,
    "--episode-length",
    "--episode_length",
    min=1,
    help="Steps per episode.",
    show_default="1000",
)
OPT_DATA_DIR = typer.Option(
    Path("data"),
    "--data-dir",
    "--data_dir",
    help="Zero-shot stats come from the robot's data here (else the checkpoint's group average).",
)
OPT_SEED = typer.Option(0, "--seed", min=0, max=flags.SEED_MAX, help="Env seed.")
OPT_THREADS = typer.Option(
    1, "--threads", help="torch threads for the model on CPU (1: no fight with MuJoCo's)."
)
OPT_JSON = typer.Option(False, "--json", help="Print the result as JSON.")
OPT_SIM = typer.Option(
    D.SIM, "--sim", help="Physics: mujoco, or genesis (pip install 'adaptkit[genesis]')."
)
OPT_TASK = typer.Option(
    DEFAULT_TASK,
    "--task",
    help="Task variant: walk (vx 0.5 m/s, the reference), varied (vx commands re-drawn every "
    "2 s, random mass and friction).",
)
OPT_RESET_CONTEXT = typer.Option(
    False,
    "--reset-context",
    "--reset_context",
    help="Forget each env's context at every episode start (the control for in-context "
    "learning; by default an env's episodes are chained in one context).",
)
OPT_TOKEN_ORDER = typer.Option(
    None,
    "--token-order",
    "--token_order",
    help="Token order of the checkpoint(s) (obs,act,rew released; act,rew,obs the fork's).",
    show_default="recorded in config.json, else inferred and checked on their tasks' data",
)
OPT_DEVICE = typer.Option(
    None,
    "--device",
    help="Where the model runs: cpu, cuda, cuda:1.",
    show_default="cuda if available",
    callback=flags.device,
)
OPT_KV_DTYPE = typer.Option(
    KVDtype.AUTO, "--kv-dtype", help="KV cache element type (auto: bf16 for large models)."
)
OPT_BASE = typer.Option(
    None,
    "--base",
    help="Base checkpoint of adapter models (local path or hf://ORG/NAME).",
    show_default="the base each adapter records",
)
OPT_VIDEO = typer.Option(
    False, "--video", help="Render the rollout offscreen into an MP4 (needs the video extra)."
)
OPT_VIDEO_ENVS = typer.Option(1, "--video-envs", help="Envs to film (the first N, tiled).")
OPT_VIDEO_SECONDS = typer.Option(
    None, "--video-seconds", help="Film at most this much simulated time.", show_default="all"
)
OPT_VIDEO_SIZE = typer.Option("480x320", "--video-size", help="Pixels per filmed env, WxH.")
OPT_GIF = typer.Option(False, "--gif", help="Also a small looping GIF (implies --video).")


def video_settings(video: bool, envs: int, seconds: float | None, size: str, gif: bool) -> Any:
    """VideoSettings from the options, or None when no video was asked for."""
    if not (video or gif):
        return None
    from adaptkit.evaluate.video import VideoSettings

    match = re.fullmatch(r"\s*([0-9]+)\s*[xX]\s*([0-9]+)\s*", size)
    if match is None:
        raise AdaptkitError(f"--video-size: expected WIDTHxHEIGHT (e.g. 480x320), got {size!r}")
    width, height = int(match[1]), int(match[2])
    return VideoSettings(envs=envs, width=width, height=height, seconds=seconds, gif=gif)


def eval_cmd(
    checkpoint: str | None = typer.Argument(
        None,
        help="Checkpoint: an NNNN_epoch folder, a run folder (latest epoch), an adapter folder, "
        "or a Hub repo (hf://ORG/NAME, optionally @REV and /SUBFOLDER).",
    ),
    vintix_path: str | None = typer.Option(
        None, "--vintix-path", "--vintix_path", help="The checkpoint, as an option (seed spelling)."
    ),
    robot: str | None = OPT_ROBOT_RECORDED,
    num_envs: int = OPT_ENVS,
    max_steps: int | None = OPT_MAX_STEPS,
    episodes: int | None = OPT_EPISODES,
    group: str | None = OPT_GROUP,
    context_len: int | None = OPT_CONTEXT,
    episode_length: int | None = OPT_EPISODE_LENGTH,
    data_dir: Path = OPT_DATA_DIR,
    seed: int = OPT_SEED,
    out: Path | None = typer.Option(
        None, "--out", help="Output folder.", show_default="eval/ROBOT"
    ),
    parallel: bool = typer.Option(
        False, "--parallel", help="Accepted for the seed's spelling; envs are always batched."
    ),
    threads: int = OPT_THREADS,
    device: str | None = OPT_DEVICE,
    kv_dtype: KVDtype = OPT_KV_DTYPE,
    base: str | None = OPT_BASE,
    video: bool = OPT_VIDEO,
    video_envs: int = OPT_VIDEO_ENVS,
    video_seconds: float | None = OPT_VIDEO_SECONDS,
    video_size: str = OPT_VIDEO_SIZE,
    gif: bool = OPT_GIF,
    token_order: TokenOrderChoice | None = OPT_TOKEN_ORDER,
    sim: Sim = OPT_SIM,
    task: str = OPT_TASK,
    reset_context: bool = OPT_RESET_CONTEXT,
    exported: Path | None = typer.Option(
        None, "--exported", help="Run an exported policy file (adaptkit export) instead."
    ),
    controls: bool = typer.Option(
        False,
        "--controls",
        help="Run every in-context control too (rewards zeroed and shuffled, a blank, standing "
        "and foreign context, reset) and say what the gain is owed to (docs/in_context.md).",
    ),
    in_context: bool = typer.Option(
        False,
        "--in-context",
        help="The shipped in-context base on the robot, no gradient step (implies --controls; "
        "its own episode length and 6 episodes unless given).",
    ),
    json_out: bool = OPT_JSON,
    config: Path | None = OPT_CONFIG,
    print_config: bool = OPT_PRINT_CONFIG,
) -> None:
    """In-context evaluation: all envs batched, one KV-cached forward per control step."""
    from adaptkit.evaluate import EvalSettings, evaluate
    from adaptkit.export.build import recorded_robot
    from adaptkit.sim.backend import require_sim

    require_sim(sim)  # before any work: a missing simulator is one line
    ckpt = checkpoint or vintix_path
    if in_context:
        from adaptkit.bootstrap.in_context import (
            IN_CONTEXT_EPISODES,
            in_context_base,
            in_context_episode_length,
        )

        if exported is not None:
            raise AdaptkitError("--in-context: runs the in-context base; give no --exported")
        ckpt = ckpt or str(in_context_base())
        episode_length = episode_length or in_context_episode_length(Path(ckpt))
        episodes = episodes or (None if max_steps else IN_CONTEXT_EPISODES)
        controls = True
    if exported is not None and ckpt is not None:
        raise AdaptkitError("--exported: runs the exported file alone; give no checkpoint")
    if ckpt is None and exported is None:
        raise AdaptkitError("give the checkpoint: CKPT or --vintix_path")
    if checkpoint is not None and vintix_path is not None and checkpoint != vintix_path:
        raise AdaptkitError("--vintix_path: conflicts with the CKPT argument; give one")
    source = exported if exported is not None else ckpt
    robot = robot or recorded_robot(source)
    if robot is None:
        raise AdaptkitError(f"--robot: {source} records no robot; name the one to run")
    out = out or Path("eval") / robot
    settings = EvalSettings.from_options(
        num_envs=num_envs, episodes=episodes, max_steps=max_steps, seed=seed,
        episode_length=episode_length, context_len=context_len, group=group,
        data_dir=data_dir, threads=threads, device=device, kv_dtype=kv_dtype, base=base,
        token_order=_order(token_order), sim=sim, task=task, reset_context=reset_context,
    )  # fmt: skip
    registry = get_registry()
    if controls:
        if exported is not None or ckpt is None:
            raise AdaptkitError("--controls: give the checkpoint (controls run a model)")
        _render_controls(ckpt, registry.robot(robot), settings, registry, out, json_out)
        return
    if exported is not None:
        from adaptkit.export.runtime import evaluate_exported

        if video or gif:  # the film is drawn by the checkpoint's rollout, not the file's
            raise AdaptkitError(
                f"--video: films a checkpoint's rollout; {exported} is an exported file (film "
                "the checkpoint it came from: adaptkit eval CKPT --video)"
            )
        report = evaluate_exported(
            exported, registry.robot(robot), settings, out_dir=out,
            reporter=RichReporter(quiet=json_out),
        )  # fmt: skip
    else:
        report = evaluate(
            ckpt,
            registry.robot(robot),
            settings,
            out_dir=out,
            label=_label(Path(ckpt)),
            reporter=RichReporter(quiet=json_out),
            video=video_settings(video, video_envs, video_seconds, video_size, gif),
            robots=list(registry.robots.values()),
        )
    save_resolved(out)
    s = report.summary
    if json_out:
        print_json({**s, "files": {k: str(v) for k, v in report.files.items()}})
        return
    console.print(
        f"[bold]{robot}[/] via group [cyan]{s['group']}[/] ({s['mode']}, {s['obs_layout']} "
        f"observations); stats: {s['stats_source']}; context {s['context_len']}; token order "
        f"{s['token_order']} ({s['token_order_source']})",
        highlight=False,
    )
    if s.get("note"):
        console.print(f"[cyan]note:[/] {s['note']}", highlight=False)
    rows = [
        (p["episode"] + 1, p["n"], fmt(p["mean"]), fmt(p["std"]), fmt(p["speed"]), p["falls"])
        for p in s["per_episode"]
    ]
    cols = ["episode", "envs", "return", "± std", "speed m/s", "falls"]
    console.print(table(f"{robot}: return per episode in context", cols, rows))
    console.print(
        f"mean return {fmt(s['mean_return'])} ± {fmt(s['std_return'])}, speed "
        f"{fmt(s['mean_speed'])} m/s, falls {s['falls']}/{s['num_episodes']}; "
        f"{s['steps_per_s']:.0f} env-steps/s (policy {s['policy_ms_per_step']:.1f} ms, "
        f"sim {s['sim_ms_per_step']:.1f} ms per step)",
        highlight=False,
    )
    console.print(f"wrote {', '.join(str(p) for p in report.files.values())}", highlight=False)


def _render_controls(
    ckpt: str, spec: Any, settings: Any, registry: Any, out: Path | None, json_out: bool
) -> None:
    from adaptkit.evaluate.in_context import evaluate_controls

    result = evaluate_controls(
        ckpt, spec, settings, list(registry.robots.values()), out or Path("eval") / spec.name
    )
    if json_out:
        print_json(result)
        return
    n = max(len(c["per_episode_normalised"]) for c in result["curves"].values())
    rows = [
        (name, *(fmt(v) if v is not None else "–" for v in c["per_episode_normalised"]))
        for name, c in result["curves"].items()
    ]
    console.print(
        table(
            f"{spec.name}: normalised score per episode (stand 0, demonstrator "
            f"{fmt(result['refs']['demonstrator'])} = 1); foreign context: {result['foreign']}",
            ["control", *(f"ep {k + 1}" for k in range(n))],
            rows,
        )
    )
    d = result["decomposition"]
    k = result["prefix_episodes"] + 1
    parts = ", ".join(
        f"{name} {fmt(d[key])}"
        for key, name in (("position", "position"), ("standing", "what standing shows"),
                          ("own_history", "own episodes"), ("rewards", "rewards"))
    )  # fmt: skip
    console.print(
        f"episode {k}: chained − reset {fmt(d['context'])} = {parts}; identification "
        f"(own vs {result['foreign']} standing) {fmt(d['identification'])}; reward-driven "
        f"share of ep {k} − ep 1: {fmt(d['gain_reward_driven'])}",
        highlight=False,
    )
    console.print(f"normalisation: {result['stats_source']}", highlight=False)
    from adaptkit.evaluate.resolve import NO_ROBOT_DATA

    if NO_ROBOT_DATA in (result["stats_source"] or ""):
        console.print(
            f"note: no data of {spec.name} in {settings.data_dir}: the model read it with its "
            f"group's average stats; collect some first (`adaptkit collect {spec.name} "
            f"--data-dir {settings.data_dir}`, docs/in_context.md)",
            highlight=False,
        )
    console.print(f"wrote {', '.join(result['files'])}", highlight=False)


def compare_cmd(
    robot: str = OPT_ROBOT,
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
    num_envs: int = OPT_ENVS,
    max_steps: int | None = OPT_MAX_STEPS,
    episodes: int | None = OPT_EPISODES,
    group: str | None = OPT_GROUP,
    context_len: int | None = OPT_CONTEXT,
    episode_length: int | None = OPT_EPISODE_LENGTH,
    data_dir: Path = OPT_DATA_DIR,
    seed: int = OPT_SEED,
    out: Path | None = typer.Option(
        None, "--out", help="Output folder.", show_default="compare/ROBOT"
    ),
    threads: int = OPT_THREADS,
    device: str | None = OPT_DEVICE,
    kv_dtype: KVDtype = OPT_KV_DTYPE,
    base: str | None = OPT_BASE,
    video: bool = OPT_VIDEO,
    video_envs: int = OPT_VIDEO_ENVS,
    video_seconds: float | None = OPT_VIDEO_SECONDS,
    video_size: str = OPT_VIDEO_SIZE,
    gif: bool = OPT_GIF,
    token_order: TokenOrderChoice | None = OPT_TOKEN_ORDER,
    sim: Sim = OPT_SIM,
    task: str = OPT_TASK,
    reset_context: bool = OPT_RESET_CONTEXT,
    json_out: bool = OPT_JSON,
    config: Path | None = OPT_CONFIG,
    print_config: bool = OPT_PRINT_CONFIG,
) -> None:
    """Zero-shot vs fine-tuned vs demonstrator vs standing: same seeds, one table and plot;
    with --video, the policies side by side in compare.mp4."""
    from adaptkit.evaluate import EvalSettings, compare
    from adaptkit.sim.backend import require_sim

    require_sim(sim)  # before any work: a missing simulator is one line
    named = _named_models(models or [], labels)
    settings = EvalSettings.from_options(
        num_envs=num_envs, episodes=episodes, max_steps=max_steps, seed=seed,
        episode_length=episode_length, context_len=context_len, group=group,
        data_dir=data_dir, threads=threads, device=device, kv_dtype=kv_dtype, base=base,
        token_order=_order(token_order), sim=sim, task=task, reset_context=reset_context,
    )  # fmt: skip
    registry = get_registry()
    out = out or Path("compare") / robot
    rep = compare(
        registry.robot(robot),
        named,
        settings,
        out_dir=out,
        demonstrator=demonstrator,
        stand=stand,
        reporter=RichReporter(quiet=json_out),
        video=video_settings(video, video_envs, video_seconds, video_size, gif),
        robots=list(registry.robots.values()),
    )
    save_resolved(out)
    if json_out:
        print_json(
            {
                "table": rep.rows,
                "not_applicable": rep.not_applicable,
                "files": {k: str(v) for k, v in rep.files.items()},
            }
        )
        return
    render_compare(rep, f"{robot} in {sim}: seed {seed}, {num_envs} envs")


def _named_models(models: list[str], labels: list[str]) -> list[tuple[str, str]]:
    """(label, path) per model from `LABEL=PATH` / `PATH` and --labels; names must be unique.
    Paths stay strings: a Hub reference (hf://…) is no local path."""
    if not models:
        raise AdaptkitError("--models: give at least one checkpoint")
    pairs = [m.split("=", 1) if "=" in m and "://" not in m.split("=", 1)[0] else (None, m)
             for m in models]  # fmt: skip
    paths = [p for _, p in pairs]
    flat = [x.strip() for label in labels for x in label.split(",") if x.strip()]
    if flat and len(flat) != len(models):
        raise AdaptkitError(f"--labels: got {len(flat)} labels for {len(models)} models")
    defaults = [_label(Path(p)) for p in paths]
    out = []
    for i, ((given, _), path) in enumerate(zip(pairs, paths, strict=True)):
        default = defaults[i] if defaults.count(defaults[i]) == 1 else str(path)
        out.append((flat[i] if flat else given or default, path))
    return out


def _return(row: dict[str, Any]) -> str:
    if row["mean_return"] is None:
        return "-"
    return f"{fmt(row['mean_return'])} ± {fmt(row['std_return'])}"


def _order(choice: TokenOrderChoice | None) -> str | None:
    return choice.value if choice is not None else None


def _label(path: Path) -> str:
    """`run/0005_epoch` for an epoch folder (the run names it), else the folder's name."""
    return f"{path.parent.name}/{path.name}" if EPOCH_RE.match(path.name) else path.name


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("eval", cls=ConfigCommand)(eval_cmd)
    app.command("compare", cls=ConfigCommand)(compare_cmd)
