"""Pictures of the locomotion env: MuJoCo's offscreen renderer, one env at a time.

The rendered model is the simulated one plus visuals only (a checker floor so motion shows, a
sky, a light), so its state layout is identical and an env's physics state draws as is. A
tracking camera follows the robot's base. Nothing here runs unless a picture is asked for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import mujoco
import numpy as np

from adaptkit.errors import AdaptkitError
from adaptkit.robot import RobotSpec
from adaptkit.sim._gl import missing_gl_hint
from adaptkit.sim.model import build_spec

STATE = mujoco.mjtState.mjSTATE_FULLPHYSICS


@dataclass(frozen=True)
class CameraView:
    """A camera that follows the robot's base; angles in degrees (MuJoCo's convention)."""

    distance: float = 1.4  # m from the base
    azimuth: float = 130.0  # 90: looking along +y (the robot walks along +x)
    elevation: float = -18.0
    height: float = 0.0  # look this far above the base (m)


def render_spec(spec: RobotSpec, width: int, height: int) -> mujoco.MjSpec:
    """The simulated robot's MjSpec with visuals added (no bodies, joints or state)."""
    ms = build_spec(spec)
    ms.visual.global_.offwidth = max(width, ms.visual.global_.offwidth)
    ms.visual.global_.offheight = max(height, ms.visual.global_.offheight)
    # Software GL (llvmpipe) is the common headless case: no shadows, no multisampling keep a
    # frame at a few ms instead of hundreds.
    ms.visual.quality.offsamples = 0
    ms.visual.headlight.ambient = [0.45, 0.45, 0.45]
    ms.visual.headlight.diffuse = [0.6, 0.6, 0.6]
    ms.add_texture(
        name="adaptkit_sky",
        type=mujoco.mjtTexture.mjTEXTURE_SKYBOX,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT,
        rgb1=[0.55, 0.65, 0.8],
        rgb2=[0.95, 0.95, 0.97],
        width=64,
        height=64,
    )
    ms.add_texture(
        name="adaptkit_checker",
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=[0.36, 0.46, 0.56],
        rgb2=[0.36, 0.46, 0.56],
        mark=mujoco.mjtMark.mjMARK_EDGE,
        markrgb=[0.62, 0.7, 0.78],
        width=256,
        height=256,
    )
    # 0.5 m squares: motion shows, and a GIF of a moving floor stays small
    floor_mat = ms.add_material(
        name="adaptkit_floor", texrepeat=[1.0, 1.0], texuniform=True, specular=0.0, shininess=0.0
    )
    floor_mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "adaptkit_checker"
    floor = ms.geom("floor")
    if floor is not None:
        floor.material = "adaptkit_floor"
        floor.size = [50.0, 50.0, 0.05]  # drawn to 50 m: the robot walks ~10 m per episode
    return ms


class SceneRenderer:
    """Renders env `i` of a LocomotionEnv (or any [nstate] physics state of `spec`'s model) to
    an RGB uint8 image [height, width, 3]."""

    def __init__(
        self, spec: RobotSpec, width: int = 480, height: int = 320, view: CameraView = CameraView()
    ) -> None:
        if width < 16 or height < 16:
            raise AdaptkitError(f"video size {width}x{height}: must be at least 16x16 pixels")
        self.width, self.height = width, height
        self.model = render_spec(spec, width, height).compile()
        self.data = mujoco.MjData(self.model)
        self.nstate = mujoco.mj_stateSize(self.model, STATE)
        try:
            self.renderer = mujoco.Renderer(self.model, height=height, width=width)
        except Exception as exc:  # MuJoCo reports a missing GL library in several ways
            raise AdaptkitError(
                f"rendering needs an OpenGL context, and MuJoCo could not open one "
                f"(MUJOCO_GL={_backend()}: {type(exc).__name__}: {_first_line(exc)}); "
                + missing_gl_hint()
            ) from None
        free = [j for j in range(self.model.njnt) if self.model.jnt_type[j] == 0]
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        self.camera.trackbodyid = int(self.model.jnt_bodyid[free[0]]) if free else 0
        self.camera.distance = view.distance
        self.camera.azimuth = view.azimuth
        self.camera.elevation = view.elevation
        self._lift = view.height
        # MuJoCo shows geom groups 0-2; some vendored models keep only collision geoms, in
        # group 3: show those when the robot has nothing else to draw.
        self.option = mujoco.MjvOption()
        robot = self.model.geom_bodyid > 0
        if not np.any(robot & (self.model.geom_group < 3)):
            self.option.geomgroup[3] = 1
        flags = self.renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """One picture of a physics state (mjSTATE_FULLPHYSICS of the simulated model)."""
        if state.shape != (self.nstate,):
            raise AdaptkitError(
                f"render: state has shape {state.shape}, expected ({self.nstate},) for this robot"
            )
        mujoco.mj_setState(self.model, self.data, state, STATE)
        mujoco.mj_forward(self.model, self.data)
        self.renderer.update_scene(self.data, camera=self.camera, scene_option=self.option)
        if self._lift:
            self.camera.lookat[2] += self._lift
        return self.renderer.render()

    def render_env(self, env: object, i: int = 0) -> np.ndarray:
        """One picture of env `i` of a LocomotionEnv as it is now."""
        return self.render_state(np.asarray(env.physics_state[i]))  # type: ignore[attr-defined]

    def close(self) -> None:
        self.renderer.close()


def _backend() -> str:
    return os.environ.get("MUJOCO_GL", "") or "default"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""
