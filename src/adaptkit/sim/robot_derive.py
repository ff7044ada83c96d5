"""Everything a robot plugin needs, derived from the robot's own file — no guesswork, and every
value with a one-line note of how it was found.

From the file (adaptkit.sim.robot_file, joint_map, robot_geometry): the joint mapping, the axis
signs, the standing pose, the heights, the mass and the torque limits. Then two tests in the
simulator decide the PD gains: on a ladder of stiffnesses, the **stand test** (the default pose
held with zero actions for STAND_S s) must keep the trunk up (no fall) at ≥ HOLD_FRACTION of its
kinematic standing height, and the **tracking test** (the geometric trot prior driven open-loop
for TRACK_S s) must keep the thigh and knee within TRACK_RMS rad RMS of their targets; the
softest kp passing both is taken, and the tracking test picks the damping among KD_RATIOS. The
height target is what the stand test measured at those gains. Last, the family's
geometry-seeded search (adaptkit.sim.family_gait: the trot prior and the built-in robots' gaits
seed a bounded tune_gait) finds a trot, accepted only when it never falls on fresh-seed check
episodes and beats standing still there by MARGIN_PER_S per second; when it does not, the next
stiffer gains that passed are tried (at most MAX_ATTEMPTS searches). What was tried is kept.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from adaptkit.errors import AdaptkitError
from adaptkit.family.quadruped import DROP_HEIGHT, trot_prior
from adaptkit.robot import CANONICAL_JOINTS, LOCOMOTION_OBS_NAMES, GaitParams, RobotSpec
from adaptkit.sim.demonstrator import TrotDemonstrator
from adaptkit.sim.env import LocomotionEnv
from adaptkit.sim.family_gait import DemonstratorRecord, SearchBudget, derive_demonstrator
from adaptkit.sim.joint_map import JointMap, map_joints
from adaptkit.sim.robot_file import RobotFile, read_robot_file
from adaptkit.sim.robot_geometry import (
    REAR_THIGH_OFFSET,
    STANCE_FRACTION,
    Geometry,
    leg_geometry,
    torque_limits,
)

GAIN_LADDER = (20.0, 25.0, 30.0, 35.0, 40.0, 50.0, 60.0, 80.0)  # kp candidates, softest first
KD_RATIOS = (1 / 60, 1 / 40, 1 / 25)  # kd / kp candidates (the built-ins: 0.024-0.027)
HOLD_FRACTION = 0.9  # the stand test: trunk height / kinematic standing height
TRACK_RMS = 0.2  # rad: the tracking test's thigh/knee error
STAND_S, TRACK_S = 3.0, 4.0  # simulated seconds of each test
TEST_ENVS, TEST_SEED = 2, 3
MARGIN_PER_S = 0.1  # a demonstrator beats standing still by this much return per second
MAX_ATTEMPTS = 3
# The search one robot gets: more than a family member (family_gait.SearchBudget's default)
# and checked on full-length episodes, 16 of them.
ROBOT_BUDGET = SearchBudget(rounds=4, batch=48, seconds=6.0, check_envs=16, check_seconds=20.0)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Value:
    """A derived value and, in one line, how it was found."""

    value: Any
    how: str


@dataclass(frozen=True)
class GainTest:
    kp: float
    kd: float
    stand_fell: bool
    stand_height: float  # m, the trunk's mean height over the test's last second
    hold: float  # stand_height / the kinematic standing height
    track_fell: bool
    track_rms: float  # rad
    passed: bool


@dataclass
class Derivation:
    """What `derive_robot` found; `spec(mjcf)` is the RobotSpec a plugin registers."""

    name: str
    source: Path
    kind: str
    file_notes: list[str]
    mjcf_xml: str  # the cleaned model (what the plugin ships)
    joints: JointMap
    geometry: Geometry
    values: dict[str, Value]
    gain_tests: list[GainTest]
    attempts: list[DemonstratorRecord]
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def demonstrator(self) -> DemonstratorRecord | None:
        """The accepted search, else the best rejected one (None: no search ran)."""
        ok = [a for a in self.attempts if a.accepted]
        if ok:
            return ok[0]
        return max(self.attempts, key=lambda a: a.return_demo, default=None)

    @property
    def accepted(self) -> bool:
        return any(a.accepted for a in self.attempts)

    def spec(self, mjcf: Path | str) -> RobotSpec:
        v = {k: x.value for k, x in self.values.items()}
        return robot_spec(self.name, mjcf, v)

    def advice(self) -> list[str]:
        """What to change when no demonstrator was accepted."""
        tips = []
        record = self.demonstrator
        if record is not None and record.falls:
            tips.append("stiffer gains: --kp with a value above the ones tried")
        if record is not None and record.speed < 0.3:
            tips.append("a longer search: --rounds 8 (the gait walks too slowly)")
        if not any(t.passed for t in self.gain_tests):
            tips.append(
                "the body sags or falls at every gain tried: check the file's masses and joint "
                "ranges, or raise its motors' torque limits"
            )
        tips.append("a different search seed: --seed 1")
        tips.append(
            "a standing pose of your own: write the plugin anyway (--allow-rejected) and edit "
            "default_joint_angles, then `adaptkit tune-robot NAME`"
        )
        return tips

    def report(self) -> dict[str, Any]:
        """The short report: demonstrator return, speed, falls, derivation time."""
        record = self.demonstrator
        out: dict[str, Any] = {"robot": self.name, "accepted": self.accepted,
                               "seconds": round(self.seconds, 1)}  # fmt: skip
        if record is not None:
            out.update(
                return_demo=round(record.return_demo, 3),
                return_stand=round(record.return_stand, 3),
                speed=round(record.speed, 3),
                falls=record.falls,
                episodes=record.episodes,
                episode_s=record.budget["check_seconds"],
                reason=record.reason,
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "robot": self.name,
            "source": str(self.source),
            "kind": self.kind,
            "file_notes": self.file_notes,
            "values": {
                k: {
                    "value": asdict(v.value) if isinstance(v.value, GaitParams) else v.value,
                    "how": v.how,
                }
                for k, v in self.values.items()
            },
            "joint_table": list(self.joints.table),
            "gain_tests": [asdict(t) for t in self.gain_tests],
            "attempts": [a.as_dict() for a in self.attempts],
            "report": self.report(),
            "notes": self.notes,
        }


def robot_spec(name: str, mjcf: Path | str, v: dict[str, Any]) -> RobotSpec:
    """The RobotSpec of derived values `v` (Derivation.values' plain values)."""
    return RobotSpec(
        name=name,
        task=f"{name}_walking_ad",
        group=f"{name}_locomotion",
        obs_names=LOCOMOTION_OBS_NAMES,
        joint_names=CANONICAL_JOINTS,
        default_joint_angles=tuple(v["default_joint_angles"]),
        kp=float(v["kp"]),
        kd=float(v["kd"]),
        base_init_height=float(v["base_init_height"]),
        base_height_target=float(v["base_height_target"]),
        mass_kg=float(v["mass_kg"]),
        torque_limits=tuple(v["torque_limits"]),
        mjcf=Path(mjcf),
        mjcf_joints=tuple(v["mjcf_joints"]),
        gait=v.get("gait"),
        data_path=f"{name}_trajectories",
        description=f"{name} (derived by adaptkit new-robot --mjcf)",
    )


# -- the two gain tests ----------------------------------------------------------------------
def stand_test(spec: RobotSpec) -> tuple[bool, float]:
    """Zero actions (the default pose held) for STAND_S: (fell, mean trunk height over the last
    second)."""
    steps = round(STAND_S / 0.02)
    env = LocomotionEnv(spec, TEST_ENVS, seed=TEST_SEED, episode_length=steps + 1)
    try:
        env.reset()
        fell = np.zeros(TEST_ENVS, dtype=bool)
        heights = []
        zeros = np.zeros((TEST_ENVS, spec.action_dim))
        for t in range(steps):
            _, _, _, info = env.step(zeros)
            fell |= info["fell"]
            if t >= steps - 50:
                heights.append(env.base_pos[:, 2].mean())
    finally:
        env.close()
    return bool(fell.any()), float(np.mean(heights))


def tracking_test(spec: RobotSpec) -> tuple[bool, float]:
    """The spec's gait driven open-loop for TRACK_S: (fell, RMS of the thigh and knee angles
    against the targets they were given, over the steps after the start-up, while up)."""
    steps = round(TRACK_S / 0.02)
    env = LocomotionEnv(spec, TEST_ENVS, seed=TEST_SEED, episode_length=steps + 1)
    try:
        obs = env.reset()
        policy = TrotDemonstrator(spec)
        policy.reset(TEST_ENVS)
        up = np.ones(TEST_ENVS, dtype=bool)
        fell = np.zeros(TEST_ENVS, dtype=bool)
        errors = []
        for t in range(steps):
            target = env.last_actions * env.action_scale + env.default_dof_pos  # applied now
            obs, _, done, info = env.step(policy.act(obs, env))
            fell |= info["fell"]
            up &= ~done
            if t >= 25 and up.any():
                err = (env.dof_pos - target).reshape(TEST_ENVS, 4, 3)[up][:, :, 1:]
                errors.append(float(np.sqrt(np.mean(err * err))))
    finally:
        env.close()
    return bool(fell.any()), float(np.mean(errors)) if errors else math.inf


def gain_tests(
    spec: RobotSpec, height: float, ladder: Sequence[float] = GAIN_LADDER
) -> list[GainTest]:
    """Both tests at every kp of `ladder` (kd = kp / 40)."""
    out = []
    for kp in ladder:
        trial = replace(spec, kp=float(kp), kd=round(float(kp) / 40, 4))
        stand_fell, z = stand_test(trial)
        track_fell, rms = tracking_test(trial)
        hold = z / height
        passed = not stand_fell and hold >= HOLD_FRACTION and rms <= TRACK_RMS
        out.append(GainTest(trial.kp, trial.kd, stand_fell, z, hold, track_fell, rms, passed))
    return out


def choose_kd(spec: RobotSpec, kp: float) -> tuple[float, str]:
    """The damping the tracking test tracks best with, among KD_RATIOS × kp."""
    results = []
    for ratio in KD_RATIOS:
        kd = round(kp * ratio, 4)
        _, rms = tracking_test(replace(spec, kp=kp, kd=kd))
        results.append((rms, kd))
    rms, kd = min(results)
    tried = ", ".join(f"{k:g}: {r:.3f}" for r, k in results)
    return kd, f"the tracking test's best at kp {kp:g} (kd: RMS rad — {tried})"


# -- the derivation ----------------------------------------------------------------------------
def derive_robot(
    path: str | Path,
    name: str,
    workdir: Path,
    joints: Sequence[str] | None = None,
    kp: float | None = None,
    pose: Sequence[float] | None = None,
    budget: SearchBudget = ROBOT_BUDGET,
    progress: Progress | None = None,
) -> Derivation:
    """Derive `name`'s plugin values from the robot file at `path` (module docstring).

    `workdir`: where the cleaned model is written for the tests (it is also the model the
    plugin ships). `joints`: the 12 joint names in canonical order instead of the tree rule;
    `kp`: the stiffness to use (the tests then only measure it); `pose`: the 12 standing angles
    to keep (e.g. a plugin's own) instead of the rule. Refusals are one line
    (joint_map.AmbiguousJoints carries a table of what was found)."""
    say = progress or (lambda message: None)
    t0 = time.perf_counter()
    rf: RobotFile = read_robot_file(path)
    model = rf.compile()
    where = str(path)
    jmap = map_joints(model, joints, where=where)
    geometry = leg_geometry(model, jmap, where=where, pose=tuple(pose) if pose else None)
    torques, torque_how = torque_limits(jmap, geometry, rf.force_limits)
    workdir.mkdir(parents=True, exist_ok=True)
    mjcf = workdir / f"{name}.xml"
    xml = rf.xml()
    mjcf.write_text(xml)
    say(
        f"{path}: {geometry.mass:.2f} kg, legs {geometry.leg_length:.3f} m, standing height "
        f"{geometry.standing_height:.3f} m; joints mapped {jmap.how.split(':')[0]}"
    )
    values: dict[str, Value] = {
        "mjcf_joints": Value(list(jmap.names), jmap.how),
        "joint_signs": Value(
            list(geometry.signs),
            "by forward kinematics: + where a positive thigh angle swings the foot backwards and "
            "a positive knee angle swings it forwards (a hip takes its thigh's sign)",
        ),
        "default_joint_angles": Value(
            [round(q, 4) for q in geometry.default_joint_angles],
            "given (kept); its signs checked against the file's axes"
            if pose
            else f"front feet straight below their thigh joints, rear thighs {REAR_THIGH_OFFSET} "
            f"rad further back, hip to foot {STANCE_FRACTION} of the leg's reach (thigh + calf), "
            "rear knees solved for a level trunk",
        ),
        "mass_kg": Value(round(geometry.mass, 3), "the file's total body mass"),
        "base_init_height": Value(
            round(geometry.standing_height + DROP_HEIGHT, 4),
            f"the standing pose's trunk height ({geometry.standing_height:.3f} m, legs rigid, "
            f"feet on the floor) + {DROP_HEIGHT} m to drop from",
        ),
        "torque_limits": Value(list(torques), torque_how),
    }
    base = robot_spec(
        name,
        mjcf,
        {
            **{k: v.value for k, v in values.items()},
            "kp": 25.0,
            "kd": 0.6,
            "base_height_target": geometry.standing_height,
            "gait": trot_prior(geometry.leg_length),
        },
    )
    if base.joint_signs != geometry.signs:  # the demonstrator reads the signs off the pose
        raise AdaptkitError(
            f"{where}: the standing pose {values['default_joint_angles'].value} does not carry "
            f"the axes' signs {list(geometry.signs)} (a thigh or knee angle of 0)"
        )
    # -- gains ---------------------------------------------------------------------------------
    ladder = (float(kp),) if kp is not None else GAIN_LADDER
    kps = ", ".join(f"{k:g}" for k in ladder)
    say(f"gain tests (stand {STAND_S:g} s, tracking {TRACK_S:g} s) at kp {kps}")
    tests = gain_tests(base, geometry.standing_height, ladder)
    passing = [t for t in tests if t.passed]
    notes: list[str] = []
    if kp is not None:
        order = tests
        gains_how = f"given with --kp; the stand test held {tests[0].hold:.0%} of the height"
    elif passing:
        order = passing
        gains_how = (
            f"the softest kp on the ladder whose stand test held ≥ {HOLD_FRACTION:.0%} of the "
            f"standing height without a fall and whose tracking test stayed within "
            f"{TRACK_RMS} rad RMS (held {passing[0].hold:.0%}, {passing[0].track_rms:.3f} rad)"
        )
    else:
        # nothing passed: the ones that stand, best held first
        order = sorted(tests, key=lambda t: (t.stand_fell, -t.hold, t.track_rms))
        gains_how = (
            f"no kp on the ladder passed both tests (≥ {HOLD_FRACTION:.0%} held, ≤ {TRACK_RMS} "
            f"rad tracked); the best-holding one ({order[0].hold:.0%} held, "
            f"{order[0].track_rms:.3f} rad)"
        )
        notes.append("no gains passed the stand and tracking tests: " + gains_how)
    # -- demonstrator: the search at the chosen gains, then the next stiffer ones ---------------
    margin = MARGIN_PER_S * budget.check_seconds
    attempts: list[DemonstratorRecord] = []
    chosen: dict[str, Any] = {}
    for i, test in enumerate(order[:MAX_ATTEMPTS]):
        kd, kd_how = choose_kd(base, test.kp)
        _, z = stand_test(replace(base, kp=test.kp, kd=kd))
        trial = replace(base, kp=test.kp, kd=kd, base_height_target=round(z, 4))
        say(
            f"trot search {i + 1} at kp {test.kp:g}, kd {kd:g} ({budget.rounds} rounds × "
            f"{budget.batch} candidates × {budget.seconds:g} s, checked on {budget.check_envs} "
            f"episodes of {budget.check_seconds:g} s)"
        )
        record = derive_demonstrator(trial, replace(budget, seed=budget.seed + i), margin=margin)
        attempts.append(record)
        verdict = "accepted" if record.accepted else f"rejected: {record.reason}"
        say(
            f"  return {record.return_demo:.2f} (standing {record.return_stand:.2f}), "
            f"{record.speed:.2f} m/s, {record.falls}/{record.episodes} fell: {verdict}"
        )
        if record.accepted or not chosen:
            chosen = {"test": test, "kd": kd, "kd_how": kd_how, "z": z, "record": record}
        if record.accepted:
            break
    record, test = chosen["record"], chosen["test"]
    if chosen["test"] is not order[0]:
        gains_how += f"; the search at kp {order[0].kp:g} was rejected, kp {test.kp:g} accepted"
    values["kp"] = Value(test.kp, gains_how)
    values["kd"] = Value(chosen["kd"], chosen["kd_how"])
    values["base_height_target"] = Value(
        round(chosen["z"], 4), f"the height the stand test held at kp {test.kp:g}"
    )
    verdict = "accepted: no fall" if record.accepted else f"REJECTED ({record.reason})"
    values["gait"] = Value(
        record.gait,
        f"the family's geometry-seeded search ({len(attempts)} run(s)), {verdict} on "
        f"{record.episodes} fresh-seed episodes of {record.budget['check_seconds']:g} s, "
        f"return {record.return_demo:.2f} vs standing {record.return_stand:.2f} (margin "
        f"{margin:g}), {record.speed:.2f} m/s",
    )
    return Derivation(
        name=name,
        source=Path(path),
        kind=rf.kind,
        file_notes=rf.notes,
        mjcf_xml=xml,
        joints=jmap,
        geometry=geometry,
        values=values,
        gain_tests=tests,
        attempts=attempts,
        seconds=time.perf_counter() - t0,
        notes=notes,
    )


def check_joint_names(joints: str | None) -> list[str] | None:
    """--joints J1,...,J12 as a list (None: not given)."""
    if joints is None:
        return None
    names = [j.strip() for j in joints.split(",") if j.strip()]
    if len(names) != 12:
        raise AdaptkitError(
            f"--joints: expected 12 comma-separated joint names (FR hip, thigh, calf, then FL, "
            f"RR, RL), got {len(names)}"
        )
    return names
