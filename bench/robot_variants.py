"""The check set of issue 33: robots nobody in the project tuned, made from the built-in MJCFs by
changing what users change (mass, leg length, joint names and order in the file, motor limits),
each taken from its file to an adapted policy with defaults and no hand edits.

    python bench/robot_variants.py write OUT            # the variant MJCF files only
    python bench/robot_variants.py run OUT [NAME ...]   # new-robot --mjcf, then finetune, each

`run` is resumable: a variant whose result JSON is in OUT/results/ is skipped. Every step is the
CLI a user types (`adaptkit new-robot NAME --mjcf FILE`, `adaptkit --plugin ... finetune NAME`),
timed; the parent's demonstrator is measured with the same `adaptkit demonstrator` settings.
Figures land in OUT/results/NAME.json and a table on stdout (docs/plugins.md keeps it).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import mujoco
import numpy as np

ASSETS = Path(__file__).resolve().parents[1] / "plugins" / "adaptkit_robots" / "assets"


def _spec(robot: str) -> mujoco.MjSpec:
    return mujoco.MjSpec.from_file(str(ASSETS / f"{robot}.xml"))


def _bodies(spec: mujoco.MjSpec) -> list[mujoco.MjsBody]:
    return [b for b in spec.bodies if b.name != "world"]


def _scale_body_mass(body: mujoco.MjsBody, factor: float) -> None:
    body.mass = body.mass * factor
    body.inertia = np.asarray(body.inertia) * factor
    body.fullinertia = np.asarray(body.fullinertia) * factor


def heavier_trunk(robot: str, extra_kg: float) -> str:
    """The trunk carries `extra_kg` more (a payload at its centre of mass)."""
    spec = _spec(robot)
    trunk = spec.worldbody.first_body()
    _scale_body_mass(trunk, (trunk.mass + extra_kg) / trunk.mass)
    return spec.to_xml()


def heavier_everywhere(robot: str, factor: float) -> str:
    """Every body's mass and inertia × `factor` (a sturdier build of the same shape)."""
    spec = _spec(robot)
    for body in _bodies(spec):
        if body.mass > 0:
            _scale_body_mass(body, factor)
    return spec.to_xml()


def longer_legs(robot: str, factor: float) -> str:
    """Thigh and calf × `factor`: every body, geom and inertial below the thigh joints is
    placed `factor` times farther (and long geoms are that much longer)."""
    spec = _spec(robot)
    model = spec.compile()
    thighs = set()
    for j in range(model.njnt):  # the hinges two below the trunk: the thigh joints' bodies
        body = int(model.jnt_bodyid[j])
        if model.jnt_type[j] == 3 and model.body_parentid[model.body_parentid[body]] == 1:
            thighs.add(model.body(body).name)

    def below(body: mujoco.MjsBody) -> bool:
        while body is not None and body.name != "world":
            if body.name in thighs:
                return True
            body = body.parent
        return False

    for body in _bodies(spec):
        if not below(body):
            continue
        if body.name not in thighs:
            body.pos = np.asarray(body.pos) * factor
        body.ipos = np.asarray(body.ipos) * factor
        for geom in body.geoms:
            geom.pos = np.asarray(geom.pos) * factor
            if geom.type in (mujoco.mjtGeom.mjGEOM_CAPSULE, mujoco.mjtGeom.mjGEOM_CYLINDER):
                geom.size = np.asarray(geom.size) * (1.0, factor, 1.0)
            elif geom.type == mujoco.mjtGeom.mjGEOM_BOX:
                geom.size = np.asarray(geom.size) * (1.0, 1.0, factor)
            if not np.isnan(geom.fromto[0]):
                geom.fromto = np.asarray(geom.fromto) * factor
        for frame in body.frames:
            frame.pos = np.asarray(frame.pos) * factor
    return spec.to_xml()


def renamed_and_reordered(robot: str, seed: int = 7) -> str:
    """Joints named j00..j11 in a shuffled order, bodies link_NN, the legs' order in the file
    shuffled: nothing in a name or an order tells which joint is which."""
    root = ET.fromstring(_spec(robot).to_xml())
    rng = random.Random(seed)
    joints = [j for j in root.iter("joint") if j.get("name") and j.get("type") != "free"]
    numbers = list(range(len(joints)))
    rng.shuffle(numbers)
    for j, n in zip(joints, numbers, strict=True):
        j.set("name", f"j{n:02d}")
    for i, body in enumerate(b for b in root.iter("body") if b.get("name")):
        body.set("name", f"link_{i:02d}")
    for geom in root.iter("geom"):
        geom.attrib.pop("name", None)
    trunk = root.find("worldbody/body")
    legs = [b for b in trunk.findall("body")]
    for leg in legs:
        trunk.remove(leg)
    rng.shuffle(legs)
    trunk.extend(legs)
    return ET.tostring(root, encoding="unicode")


def weaker_motors(robot: str, hip_thigh: float, knee: float) -> str:
    """Torque motors in the file (ctrlrange × gear 1) at these limits: the file says what the
    motors give, and the derivation must read it."""
    spec = _spec(robot)
    model = spec.compile()
    for j in range(1, model.njnt):
        name = model.joint(j).name
        depth = 0
        body = int(model.jnt_bodyid[j])
        while body != 1:
            body = int(model.body_parentid[body])
            depth += 1
        limit = knee if depth == 3 else hip_thigh
        act = spec.add_actuator(name=f"{name}_motor", target=name)
        act.trntype = mujoco.mjtTrn.mjTRN_JOINT
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.ctrlrange = [-limit, limit]
        act.gear[0] = 1.0
    return spec.to_xml()


# name -> (parent robot, how the file is made, what changed)
VARIANTS: dict[str, tuple[str, Callable[[], str], str]] = {
    "go1_payload4": ("go1", lambda: heavier_trunk("go1", 4.0), "Go1, trunk +4 kg (16.7 kg)"),
    "cheetah_heavy": (
        "minicheetah",
        lambda: heavier_everywhere("minicheetah", 1.4),
        "Mini Cheetah, every body 40 % heavier (12.4 kg)",
    ),
    "a1_longlegs": ("a1", lambda: longer_legs("a1", 1.2), "A1, thighs and calves 20 % longer"),
    "go2_scrambled": (
        "go2",
        lambda: renamed_and_reordered("go2"),
        "Go2, joints j00..j11 shuffled, bodies renamed, legs reordered in the file",
    ),
    "go1_weak": (
        "go1",
        lambda: weaker_motors("go1", 8.0, 12.0),
        "Go1 with torque motors in the file at 8/8/12 Nm (its trot peaks at ≈ 12/15 Nm)",
    ),
}


def write(out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (_, make, _) in VARIANTS.items():
        path = out / f"{name}.xml"
        path.write_text(make())
        paths[name] = path
    return paths


def _adaptkit(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "adaptkit", *args], capture_output=True, text=True, env=env
    )
    return res, time.perf_counter() - t0


def _demonstrator(robot: str, plugin: list[str], env: dict[str, str]) -> dict:
    res, _ = _adaptkit(*plugin, "demonstrator", robot, "--json", env=env)
    if res.returncode:
        raise SystemExit(res.stderr)
    return json.loads(res.stdout)


def run(out: Path, names: list[str]) -> None:
    paths = write(out)
    results = out / "results"
    results.mkdir(exist_ok=True)
    (out / "data").mkdir(exist_ok=True)  # finetune collects each robot's histories here
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    for name in names or list(VARIANTS):
        parent, _, what = VARIANTS[name]
        done = results / f"{name}.json"
        if done.is_file():
            continue
        pkg = out / "packages" / f"adaptkit-{name}"
        record: dict = {"robot": name, "parent": parent, "what": what}
        if not pkg.is_dir():
            res, seconds = _adaptkit(
                "new-robot", name, "--mjcf", str(paths[name]), "--out", str(pkg), env=env
            )
            record["new_robot_s"] = seconds
            record["new_robot_rc"] = res.returncode
            record["new_robot_out"] = res.stdout[-3000:] + res.stderr[-2000:]
            print(res.stdout, res.stderr, flush=True)
            if res.returncode:
                done.write_text(json.dumps(record, indent=1))
                continue
        plugin = ["--plugin", str(pkg / "src" / f"adaptkit_{name}" / "plugin.py")]
        record["derivation"] = json.loads(
            (pkg / "src" / f"adaptkit_{name}" / "derivation.json").read_text()
        )
        record["demonstrator"] = _demonstrator(name, plugin, env)
        record["parent_demonstrator"] = _demonstrator(parent, [], env)
        runs = out / "models"
        res, seconds = _adaptkit(
            *plugin, "finetune", name, "--save-dir", str(runs), "--data-dir",
            str(out / "data"), "--json", env=env,
        )  # fmt: skip
        record["finetune_s"] = seconds
        record["finetune_rc"] = res.returncode
        record["finetune_tail"] = res.stderr[-3000:]
        if res.returncode == 0:
            record["finetune"] = json.loads(res.stdout)
        done.write_text(json.dumps(record, indent=1, default=str))
        print(json.dumps({k: v for k, v in record.items() if "tail" not in k}, default=str)[:2000])
    table(results)


def table(results: Path) -> None:
    rows = []
    for path in sorted(results.glob("*.json")):
        r = json.loads(path.read_text())
        demo, parent = r.get("demonstrator", {}), r.get("parent_demonstrator", {})
        ratio = (
            demo["mean_return"] / parent["mean_return"]
            if demo and parent and parent.get("mean_return")
            else float("nan")
        )
        compare = {row["label"]: row for row in (r.get("finetune") or {}).get("compare", [])}
        zs, ft = compare.get("zero-shot", {}), compare.get("fine-tuned", {})
        rows.append(
            f"| {r['robot']} | {r['what']} | {demo.get('mean_return', float('nan')):.2f} | "
            f"{parent.get('mean_return', float('nan')):.2f} | {ratio:.2f} | "
            f"{demo.get('fall_rate', float('nan')):.0%} | "
            f"{r.get('new_robot_s', float('nan')):.0f} | "
            f"{zs.get('normalised_score') or float('nan'):.2f} | "
            f"{ft.get('normalised_score') or float('nan'):.2f} | "
            f"{r.get('finetune_s', float('nan')):.0f} |"
        )
    print("| robot | what changed | demo return | parent's | ratio | falls | new-robot s | "
          "zero-shot norm. | fine-tuned norm. | finetune s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    cmd, out, *rest = sys.argv[1:]
    if cmd == "write":
        print("\n".join(str(p) for p in write(Path(out)).values()))
    elif cmd == "run":
        run(Path(out), rest)
    elif cmd == "table":
        table(Path(out) / "results")
    else:
        raise SystemExit(__doc__)
