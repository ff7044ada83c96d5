"""`adaptkit new-robot NAME [--mjcf FILE]` and `adaptkit tune-robot NAME`: a robot's plugin
package written from its file with every value derived, or an existing plugin derived again."""

from __future__ import annotations

from pathlib import Path

import typer

from adaptkit.commands import flags
from adaptkit.commands.registry import complete_robot
from adaptkit.commands.render import console, err_console, print_json, table
from adaptkit.errors import AdaptkitError
from adaptkit.plugins import get_registry


def _budget(rounds, batch, seconds, episodes, check_seconds, seed):
    """The search budget: the library's (sim.robot_derive.ROBOT_BUDGET) with the given flags;
    imported here, so `--help` needs no simulator."""
    from dataclasses import replace

    from adaptkit.sim.robot_derive import ROBOT_BUDGET

    given = {
        "rounds": rounds,
        "batch": batch,
        "seconds": seconds,
        "check_envs": episodes,
        "check_seconds": check_seconds,
        "seed": seed,
    }
    return replace(ROBOT_BUDGET, **{k: v for k, v in given.items() if v is not None})


OPT_ROUNDS = typer.Option(None, "--rounds", min=1, help="Gait search rounds.", show_default="4")
OPT_BATCH = typer.Option(None, "--batch", min=6, help="Candidates per round.", show_default="48")
OPT_SECONDS = typer.Option(
    None,
    "--seconds",
    help="Simulated seconds per candidate.",
    show_default="6",
    callback=flags.positive_seconds,
)
OPT_EPISODES = typer.Option(
    None,
    "--check-episodes",
    min=1,
    help="Fresh-seed episodes the gait is checked on.",
    show_default="16",
)
OPT_CHECK_S = typer.Option(
    None,
    "--check-seconds",
    help="Seconds per check episode.",
    show_default="20",
    callback=flags.positive_seconds,
)
OPT_SEED = typer.Option(
    None, "--seed", min=0, max=flags.SEED_MAX, help="Search seed.", show_default="0"
)
OPT_KP = typer.Option(
    None,
    "--kp",
    min=1.0,
    help="Use this stiffness (the gain tests then only measure it).",
    show_default="the gain tests decide",
)
OPT_JSON = typer.Option(False, "--json", help="Print the derivation as JSON.")


def _say(json_out: bool):
    def say(message: str) -> None:
        if not json_out:
            console.print(message, highlight=False, markup=False)

    return say


def _render(derivation, json_out: bool) -> None:
    from adaptkit.scaffold import report_rows

    if json_out:
        print_json(derivation.as_dict())
        return
    title = f"{derivation.name}: derived from {derivation.source}"
    cols = ["field", "value", "how it was found"]
    console.print(table(title, cols, report_rows(derivation)))
    r = derivation.report()
    if "return_demo" in r:
        verdict = "accepted" if r["accepted"] else f"REJECTED: {r['reason']}"
        console.print(
            f"demonstrator: return {r['return_demo']:.2f} per {r['episode_s']:g} s episode "
            f"(standing still {r['return_stand']:.2f}), {r['speed']:.2f} m/s, {r['falls']} of "
            f"{r['episodes']} episodes fell; {verdict}; derived in {r['seconds']:.0f} s",
            highlight=False,
        )


def _attempts(derivation) -> None:
    """What was tried (on stderr, above the one-line refusal): searches, gain tests, advice."""
    rows = []
    for i, a in enumerate(derivation.attempts):
        b = a.budget
        rows.append(
            (
                i + 1,
                f"{b['rounds']} × {b['batch']} × {b['seconds']:g} s",
                f"{a.return_demo:.2f}",
                f"{a.return_stand:.2f}",
                f"{a.speed:.2f}",
                f"{a.falls}/{a.episodes}",
                a.reason or "accepted",
            )
        )
    cols = ["search", "budget", "return", "standing", "m/s", "fell", "verdict"]
    err_console.print(table("what was tried", cols, rows))
    gains = [
        (
            f"{t.kp:g}",
            f"{t.kd:g}",
            "fell" if t.stand_fell else f"{t.hold:.0%}",
            f"{t.track_rms:.3f}",
            "yes" if t.passed else "no",
        )
        for t in derivation.gain_tests
    ]
    cols = ["kp", "kd", "stand: height held", "tracking RMS rad", "passed"]
    err_console.print(table("gain tests", cols, gains))
    err_console.print("what to change: " + "; ".join(derivation.advice()), highlight=False)


def _ambiguous(exc) -> None:
    from adaptkit.sim.joint_map import TABLE_COLUMNS

    rows = [[row[c] for c in TABLE_COLUMNS] for row in exc.table]
    err_console.print(table("hinge joints found", list(TABLE_COLUMNS), rows))


def new_robot(
    name: str = typer.Argument(..., help="The robot's name: lower-case letters, digits, '_'."),
    out: Path | None = typer.Option(
        None, "--out", help="Folder to write the package to.", show_default="./adaptkit-NAME"
    ),
    mjcf: Path | None = typer.Option(
        None,
        "--mjcf",
        help="The robot's MJCF (or a URDF MuJoCo reads): derive every plugin value from it.",
        show_default="a starter model to replace",
    ),
    joints: str | None = typer.Option(
        None,
        "--joints",
        help="The 12 joint names, comma-separated, FR hip/thigh/calf then FL, RR, RL (when the "
        "kinematic tree does not tell).",
        show_default="read off the kinematic tree",
    ),
    kp: float | None = OPT_KP,
    rounds: int | None = OPT_ROUNDS,
    batch: int | None = OPT_BATCH,
    seconds: float | None = OPT_SECONDS,
    episodes: int | None = OPT_EPISODES,
    check_seconds: float | None = OPT_CHECK_S,
    seed: int | None = OPT_SEED,
    allow_rejected: bool = typer.Option(
        False, "--allow-rejected", help="Write the package even if no demonstrator was accepted."
    ),
    json_out: bool = OPT_JSON,
) -> None:
    """Write an installable plugin package for a new robot. With --mjcf every value (joint
    mapping, signs, pose, heights, torques, gains, a trot demonstrator) is derived from the
    robot's file and noted; without it, a starter model to replace."""
    from adaptkit.scaffold import derive_plugin_package, package_root, write_plugin_package

    registry = get_registry()
    if name in registry.robots:
        raise AdaptkitError(
            f"robot {name!r} is already registered by plugin {registry.owner(name)!r}; "
            "choose another name"
        )
    derived = mjcf is not None
    options = {
        "--joints": joints,
        "--kp": kp,
        "--allow-rejected": allow_rejected or None,
        "--rounds": rounds,
        "--batch": batch,
        "--seconds": seconds,
        "--seed": seed,
        "--check-episodes": episodes,
        "--check-seconds": check_seconds,
    }
    given = [flag for flag, value in options.items() if value is not None]
    if not derived and given:
        raise AdaptkitError(f"{given[0]}: only with --mjcf FILE (values derived from a file)")
    if not derived:
        root, files = write_plugin_package(name, out)
    else:
        from adaptkit.sim.joint_map import AmbiguousJoints
        from adaptkit.sim.robot_derive import check_joint_names

        package_root(name, out)  # a taken folder fails before a minute of deriving
        try:
            root, files, derivation = derive_plugin_package(
                name,
                mjcf,
                out,
                joints=check_joint_names(joints),
                kp=kp,
                budget=_budget(rounds, batch, seconds, episodes, check_seconds, seed),
                allow_rejected=allow_rejected,
                progress=_say(json_out),
            )
        except AmbiguousJoints as exc:
            _ambiguous(exc)
            raise
        _render(derivation, json_out)
        if root is None:
            _attempts(derivation)
            record = derivation.demonstrator
            why = record.reason if record is not None else "no search ran"
            raise AdaptkitError(
                f"{mjcf}: no trot demonstrator accepted for {name} ({why}); nothing written — "
                "see what to change above, or --allow-rejected to write it anyway"
            )
        if not derivation.accepted:
            err_console.print(
                f"warning: the demonstrator of {name} was REJECTED "
                f"({derivation.demonstrator.reason}); the package says so",
                highlight=False,
            )
    if json_out:
        return
    console.print(f"wrote the {name} plugin package in {root}/:", highlight=False)
    for path in files:
        console.print(f"  {path.relative_to(root)}", highlight=False)
    nxt = f"adaptkit finetune {name}" if derived else f"see {root / 'README.md'}"
    console.print(f"next: pip install -e {root} && adaptkit robots && {nxt}", highlight=False)


def tune_robot(
    robot: str = typer.Argument(
        ..., help="Robot name (see `adaptkit robots`).", autocompletion=complete_robot
    ),
    keep_pose: bool = typer.Option(
        False, "--keep-pose", help="Keep the plugin's default_joint_angles (else derived again)."
    ),
    kp: float | None = OPT_KP,
    rounds: int | None = OPT_ROUNDS,
    batch: int | None = OPT_BATCH,
    seconds: float | None = OPT_SECONDS,
    episodes: int | None = OPT_EPISODES,
    check_seconds: float | None = OPT_CHECK_S,
    seed: int | None = OPT_SEED,
    write: bool = typer.Option(
        False,
        "--write",
        help="Rewrite the plugin (only one `new-robot --mjcf` wrote, while unedited).",
    ),
    json_out: bool = OPT_JSON,
) -> None:
    """Derive a registered robot's plugin values again from its MJCF (its joint mapping kept):
    gains by the stand and tracking tests, heights, torques, pose and a trot demonstrator;
    prints the RobotSpec lines to paste."""
    from adaptkit.scaffold import rederive, rewrite_derived_plugin, spec_lines

    spec = get_registry().robot(robot)
    derivation, agree = rederive(
        spec,
        keep_pose=keep_pose,
        kp=kp,
        budget=_budget(rounds, batch, seconds, episodes, check_seconds, seed),
        progress=_say(json_out),
    )
    if not json_out:
        console.print(agree, highlight=False)
    _render(derivation, json_out)
    if not derivation.accepted:
        if not json_out:
            _attempts(derivation)
        raise AdaptkitError(
            f"{spec.mjcf}: no trot demonstrator accepted for {robot} "
            f"({derivation.demonstrator.reason if derivation.demonstrator else 'no search'}); "
            "nothing to paste — see what to change above"
        )
    if write:
        for path in rewrite_derived_plugin(spec, derivation):
            if not json_out:
                console.print(f"rewrote {path}", highlight=False)
    elif not json_out:
        console.print(f"paste into the {robot} plugin's RobotSpec:", highlight=False)
        print(spec_lines(derivation, spec.mjcf.name))


def register(app: typer.Typer) -> None:
    app.command("new-robot")(new_robot)
    app.command("tune-robot")(tune_robot)
