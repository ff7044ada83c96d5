"""`adaptkit collect` (noise-distillation learning histories) and `adaptkit demonstrator`."""

from __future__ import annotations

from pathlib import Path

import typer

from adaptkit.commands import flags
from adaptkit.commands.evaluate import OPT_TASK
from adaptkit.commands.registry import complete_robot
from adaptkit.commands.render import RichReporter, console, fmt, print_json, table
from adaptkit.defaults import SIM, Sim
from adaptkit.plugins import get_registry

OPT_SIM = typer.Option(
    SIM, "--sim", help="Physics: mujoco, or genesis (pip install 'adaptkit[genesis]')."
)


def collect(
    robot: str = typer.Argument(
        ..., help="Robot name (see `adaptkit robots`).", autocompletion=complete_robot
    ),
    histories: int = typer.Option(8, "--histories", min=1, help="Learning histories to write."),
    steps_per_history: int = typer.Option(
        15_000, "--steps-per-history", "--steps_per_history", min=1, help="Control steps each."
    ),
    num_envs: int = typer.Option(
        8, "--num-envs", "--num_envs", min=1, help="Envs simulated at once (one history each)."
    ),
    data_dir: Path = typer.Option(
        Path("data"), "--data-dir", "--data_dir", help="Folder for the task folder and config."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Task folder (default: DATA_DIR / the robot's data path)."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="Dataset config YAML (default: DATA_DIR/dataset_config.yaml)."
    ),
    seed: int = typer.Option(0, "--seed", min=0, max=flags.SEED_MAX),
    expert: str | None = typer.Option(
        None, "--expert", help="'trot' (default) or a TorchScript / nn.Module .pt policy file."
    ),
    obs_layout: str | None = typer.Option(
        None,
        "--obs-layout",
        "--obs_layout",
        help="Observation layout: locomotion45, fork33 (the quadruped fork's 33 dims), ...",
        show_default="the robot plugin's own",
    ),
    sim: Sim = OPT_SIM,
    task: str = OPT_TASK,
    episode_length: int = typer.Option(
        1000, "--episode-length", "--episode_length", min=1, help="Control steps per episode."
    ),
    noise_cycle: int = typer.Option(
        0,
        "--noise-cycle",
        "--noise_cycle",
        min=0,
        help="Let the noise fall across this many episodes, then start over (>= 2); 0: SPEC.md's "
        "schedule over the whole history.",
    ),
) -> None:
    """Simulate continuous-noise-distillation learning histories (Vintix HDF5 layout)."""
    from adaptkit.sim.backend import require_sim
    from adaptkit.sim.collect import collect_histories

    require_sim(sim)
    if noise_cycle == 1:
        raise typer.BadParameter("must be 0 (off) or >= 2 episodes", param_hint="--noise-cycle")

    spec = get_registry().robot(robot).for_layout(obs_layout)
    out_dir = out if out is not None else data_dir / spec.data_path
    config_path = config if config is not None else data_dir / "dataset_config.yaml"
    total = histories * steps_per_history
    paths = collect_histories(
        spec,
        out_dir,
        histories,
        steps_per_history,
        num_envs,
        seed,
        progress=RichReporter().collecting(spec.name, total),
        expert=expert,
        config_path=config_path,
        sim=sim,
        task=task,
        episode_length=episode_length,
        noise_cycle=noise_cycle,
    )
    console.print(
        f"wrote {len(paths)} {sim} histories of task {task} ({total:,} steps, {spec.obs_dim}-dim "
        f"{spec.obs_layout or 'custom'} observations) to {out_dir}; "
        f"dataset config entry '{spec.task}' in {config_path}"
    )


def demo(
    robot: str = typer.Argument(
        ..., help="Robot name (see `adaptkit robots`).", autocompletion=complete_robot
    ),
    num_envs: int = typer.Option(16, "--num-envs", "--num_envs", min=1),
    episodes: int = typer.Option(1, "--episodes", min=1, help="Episodes per env."),
    seed: int = typer.Option(1000, "--seed", min=0, max=flags.SEED_MAX),
    expert: str | None = typer.Option(
        None, "--expert", help="'trot' or a .pt policy file.", show_default="the plugin's expert"
    ),
    sim: Sim = OPT_SIM,
    task: str = OPT_TASK,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Run the robot's demonstrator: mean return per episode, forward speed, fall rate."""
    from adaptkit.evaluate import EvalSettings, evaluate_policy
    from adaptkit.sim import load_demonstrator
    from adaptkit.sim.backend import require_sim

    require_sim(sim)
    spec = get_registry().robot(robot)
    settings = EvalSettings(
        num_envs=num_envs, episodes=episodes, seed=seed, expert=expert, sim=sim, task=task
    )
    s = evaluate_policy(load_demonstrator(spec, expert), spec, settings).summary
    if json_out:
        print_json(s)
        return
    row = (
        spec.name,
        s["num_episodes"],
        f"{fmt(s['mean_return'])} ± {fmt(s['std_return'])}",
        fmt(s["mean_speed"], 3),
        f"{s['fall_rate']:.1%}",
        f"{s['steps_per_s']:,.0f}",
    )
    row = (*row[:1], str(sim), *row[1:])
    cols = ["robot", "sim", "episodes", "return / episode", "speed m/s", "falls", "env-steps/s"]
    console.print(table("demonstrator", cols, [row]))


def tune_gait(
    robot: str = typer.Argument(
        ..., help="Robot name (see `adaptkit robots`).", autocompletion=complete_robot
    ),
    rounds: int = typer.Option(8, "--rounds", min=1, help="Search rounds (each narrower)."),
    batch: int = typer.Option(128, "--batch", min=6, help="Candidates per round (one batch)."),
    seconds: float = typer.Option(
        10.0,
        "--seconds",
        help="Simulated seconds per candidate.",
        callback=flags.positive_seconds,
    ),
    seed: int = typer.Option(0, "--seed", min=0, max=flags.SEED_MAX),
    episodes: int = typer.Option(
        16, "--check-episodes", min=1, help="Fresh-seed episodes the best gait is checked on."
    ),
    check_seconds: float = typer.Option(
        20.0,
        "--check-seconds",
        help="Seconds per check episode.",
        callback=flags.positive_seconds,
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Tune the robot's trot demonstrator in simulation, check the best gait on fresh seeds
    against standing still, and print its GaitParams for the plugin — only when it never
    falls there and beats standing still by a margin."""
    from adaptkit.errors import AdaptkitError
    from adaptkit.sim.family_gait import SearchBudget, derive_demonstrator
    from adaptkit.sim.robot_derive import MARGIN_PER_S

    spec = get_registry().robot(robot)

    def show(rnd: int, r: dict) -> None:
        if not json_out:
            console.print(
                f"round {rnd + 1}/{rounds}: best {r['best']:.3f} (this round's max "
                f"{r['batch_max']:.3f}, {r['alive']:.0%} stayed up)",
                highlight=False,
            )

    budget = SearchBudget(rounds, batch, seconds, episodes, check_seconds, seed)
    margin = MARGIN_PER_S * check_seconds
    # the search starts from the plugin's own gait only (as tuning the built-ins did)
    record = derive_demonstrator(spec, budget, starts=(), margin=margin, progress=show)
    line = "gait=GaitParams(" + ", ".join(f"{v:.3f}" for v in vars(record.gait).values()) + "),"
    if json_out:
        print_json({"robot": spec.name, "accepted": record.accepted, **record.as_dict(),
                    "gait": vars(record.gait)})  # fmt: skip
    else:
        console.print(
            f"checked on {episodes} fresh-seed episodes of {check_seconds:g} s: return "
            f"{record.return_demo:.2f} (standing still {record.return_stand:.2f}, margin "
            f"{margin:g}), {record.speed:.2f} m/s, {record.falls} fell",
            highlight=False,
        )
    if not record.accepted:
        raise AdaptkitError(
            f"tune-gait {robot}: found no gait to recommend ({record.reason}); try more "
            f"--rounds (now {rounds}), stiffer gains or another standing pose (kp, "
            f"default_joint_angles in the plugin; `adaptkit tune-robot {robot}` derives both)"
        )
    if not json_out:
        console.print(
            f"score {record.tune_score:.3f}; paste into the {spec.name} plugin's RobotSpec:"
        )
        print(line)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("collect")(collect)
    app.command("demonstrator")(demo)
    app.command("tune-gait")(tune_gait)
