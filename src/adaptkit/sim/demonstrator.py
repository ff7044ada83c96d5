"""Experts for the locomotion env: a trotting CPG with feedback, or a user's torch policy
(TorchScript, or a state dict in an architecture the robot plugin declares; never a pickle).

Gait angles are in 'effective' units (thigh + = foot backwards, calf + = more flexed) and mapped to
each robot's joint axes with `RobotSpec.joint_signs`, so one controller drives Unitree and Mini
Cheetah legs alike. All arithmetic is vectorised over envs; parameters may be per-env arrays
(used by the tuning script to evaluate many candidates in one batched env).
"""

from __future__ import annotations

import pickle
import pickletools
import warnings
from dataclasses import astuple, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adaptkit.errors import AdaptkitError
from adaptkit.robot import GaitParams, RobotSpec
from adaptkit.sim.env import LocomotionEnv
from adaptkit.sim.policy import Policy

# Diagonal trot in canonical leg order FR, FL, RR, RL: FR+RL in phase, FL+RR half a cycle later.
LEG_PHASE = np.array([0.0, np.pi, np.pi, 0.0])
FRONT = np.array([1.0, 1.0, -1.0, -1.0])  # +1 front legs, -1 rear legs
LEFT = np.array([-1.0, 1.0, -1.0, 1.0])  # +1 left legs, -1 right legs
RAMP_S = 0.2  # amplitudes fade in over the first 10 control steps of an episode
SPEED_FILTER = 0.1  # low-pass factor per control step for the measured forward speed


class TrotDemonstrator:
    """Joint-space trot CPG with forward-speed feedback on the stride and pitch/roll feedback.

    thigh = A_th(v)·cos(φ + lead) + d_th,  calf = A_ca·max(0, sin φ) + d_ca + body feedback,
    with A_th(v) = A_th + k_v·(v_cmd − v̄x) and φ the leg's phase of a `frequency` Hz clock.
    """

    def __init__(
        self,
        spec: RobotSpec,
        gait: GaitParams | None = None,
        params: dict[str, np.ndarray] | None = None,
        name: str = "demonstrator",
    ) -> None:
        self.name = name
        gait = gait or spec.gait
        if gait is None and params is None:
            raise AdaptkitError(f"robot {spec.name!r} has no gait parameters (spec.gait)")
        self.spec = spec
        # params: per-env arrays overriding the spec's scalars (same names as GaitParams).
        base = (
            dict(zip([f.name for f in fields(GaitParams)], astuple(gait), strict=True))
            if gait
            else {}
        )
        base.update(params or {})
        self.p = {k: np.asarray(v, dtype=np.float64)[..., None] for k, v in base.items()}
        signs = np.asarray(spec.joint_signs).reshape(4, 3)
        self._sign_thigh, self._sign_calf = signs[:, 1], signs[:, 2]
        self._scale = spec.action_scale
        self._v_filt: np.ndarray | None = None

    def reset(self, num_envs: int) -> None:
        self._v_filt = np.zeros(num_envs)

    def observe(self, actions: np.ndarray, rewards: np.ndarray, done: np.ndarray) -> None:
        if self._v_filt is not None:
            self._v_filt[np.asarray(done, dtype=bool)] = 0.0  # a new episode: forget the speed

    def close(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"policy": "demonstrator", "class": type(self).__name__}

    def act(self, obs: np.ndarray, env: LocomotionEnv) -> np.ndarray:
        n = env.num_envs
        if self._v_filt is None or len(self._v_filt) != n:
            self._v_filt = np.zeros(n)
        p = self.p
        vx = env.base_lin_vel[:, 0]
        self._v_filt += SPEED_FILTER * (vx - self._v_filt)
        t = (env.step_num * env.dt)[:, None]  # [N,1]
        ramp = np.minimum(t / RAMP_S, 1.0)
        v_err = env.commands[:, :1] - self._v_filt[:, None]
        a_th = np.clip(
            p["thigh_amplitude"] + p["speed_gain"] * v_err, 0.0, 2.0 * p["thigh_amplitude"]
        )
        phi = 2.0 * np.pi * p["frequency"] * t + LEG_PHASE  # [N,4]
        thigh = ramp * a_th * np.cos(phi + p["phase_lead"]) + p["thigh_offset"]
        calf = ramp * p["calf_amplitude"] * np.maximum(0.0, np.sin(phi)) + p["calf_offset"]
        # Nose down (pitch > 0) -> extend the front calves, flex the rear; same for roll sideways.
        calf -= p["pitch_gain"] * env.pitch[:, None] * FRONT
        calf += p["roll_gain"] * env.roll[:, None] * LEFT
        actions = np.zeros((n, 4, 3))
        actions[:, :, 1] = thigh * self._sign_thigh
        actions[:, :, 2] = calf * self._sign_calf
        return actions.reshape(n, 12) / self._scale


class TorchPolicy:
    """A torch module (TorchScript, or a plugin's architecture holding a loaded state dict)
    mapping obs [N,obs_dim] (the robot's observation layout) -> actions [N,12].

    A module with a `reset(mask)` method is told which envs start a new episode (None: all)."""

    def __init__(self, module: Any, source: str = "", name: str = "demonstrator") -> None:
        self.name = name
        self.module = module
        self.source = source
        if hasattr(module, "eval"):
            module.eval()

    def reset(self, num_envs: int) -> None:
        if hasattr(self.module, "reset"):
            self.module.reset(None)

    def observe(self, actions: np.ndarray, rewards: np.ndarray, done: np.ndarray) -> None:
        if hasattr(self.module, "reset") and np.any(done):
            self.module.reset(np.asarray(done, dtype=bool))

    def close(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"policy": "demonstrator", "class": type(self).__name__, "file": self.source}

    def act(self, obs: np.ndarray, env: LocomotionEnv) -> np.ndarray:
        with torch.no_grad():
            out = self.module(torch.as_tensor(obs, dtype=torch.float32))
        return np.asarray(out.detach().cpu().numpy(), dtype=np.float64)


EXPERT_ARCH = "expert_arch"  # RobotSpec.extra key: a zero-argument callable -> torch.nn.Module
_HOW = (
    "save the policy as TorchScript (torch.jit.script(model).save(path)), or save its "
    f"state_dict() and declare its architecture in the robot plugin: extra={{'expert': path, "
    f"'{EXPERT_ARCH}': ModuleClass}}"
)


_OBJECT_OPS = {"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"}


def _holds_python_objects(path: Path, limit: int = 1 << 20) -> bool:
    """Whether a file is a plain pickle stream that builds Python objects: its opcodes are only
    parsed (pickletools), never executed."""
    try:
        data = path.read_bytes()[:limit]
        for op, _, _ in pickletools.genops(data):
            if op.name in _OBJECT_OPS:
                return True
    except Exception:  # not a pickle stream, or cut at `limit`
        return False
    return False


def _load_state_dict_expert(spec: RobotSpec, path: Path) -> torch.nn.Module:
    """A state dict loaded with weights_only=True into the architecture the plugin declares."""
    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": the error below says it all
            warnings.simplefilter("ignore")
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc) and not _holds_python_objects(path):
            raise AdaptkitError(
                f"policy file {path}: not a TorchScript or torch.save file ({type(exc).__name__})"
            ) from None
        # the file holds pickled Python objects (a whole nn.Module, or worse): unpickling runs
        # code from the file, so adaptkit never does it
        raise AdaptkitError(
            f"policy file {path}: holds pickled Python objects, which adaptkit never loads "
            f"(unpickling can run code from the file); {_HOW}"
        ) from None
    except Exception as exc:
        raise AdaptkitError(
            f"policy file {path}: not a TorchScript or torch.save file ({type(exc).__name__})"
        ) from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise AdaptkitError(
            f"policy file {path}: expected TorchScript or a state dict of tensors, got "
            f"{type(sd).__name__}; {_HOW}"
        )
    arch = spec.extra.get(EXPERT_ARCH)
    if arch is None:
        raise AdaptkitError(
            f"policy file {path}: a state dict, but robot '{spec.name}' declares no expert "
            f"architecture to load it into; {_HOW}"
        )
    if not callable(arch):
        raise AdaptkitError(
            f"robot '{spec.name}': extra['{EXPERT_ARCH}'] must be a callable returning a "
            f"torch.nn.Module, got {type(arch).__name__}"
        )
    module = arch()
    if not isinstance(module, torch.nn.Module):
        raise AdaptkitError(
            f"robot '{spec.name}': extra['{EXPERT_ARCH}']() returned {type(module).__name__}, "
            "expected a torch.nn.Module"
        )
    expected = module.state_dict()
    problems = [f"missing {k}" for k in expected if k not in sd]
    problems += [f"unexpected {k}" for k in sd if k not in expected]
    problems += [
        f"{k}: file {list(sd[k].shape)} vs architecture {list(v.shape)}"
        for k, v in expected.items()
        if k in sd and sd[k].shape != v.shape
    ]
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        raise AdaptkitError(
            f"policy file {path}: does not fit the {EXPERT_ARCH} of robot '{spec.name}' "
            f"({type(module).__name__}): {'; '.join(problems[:3])}{more}"
        )
    module.load_state_dict(sd, strict=True)
    return module


def load_demonstrator(spec: RobotSpec, path_or_name: str | Path | None = None) -> Policy:
    """The robot's expert: 'trot', or a .pt file: TorchScript, or a state dict that the robot's
    plugin declares an architecture for (`extra["expert_arch"]`).

    Nothing is ever unpickled into Python objects: a pickled nn.Module is refused, with the
    reason. With no argument a plugin's `extra["expert"]` (a .pt path) wins over the trot CPG.
    """
    if path_or_name is None:
        path_or_name = spec.extra.get("expert")
    if path_or_name in (None, "trot", "demonstrator", ""):
        return TrotDemonstrator(spec)
    path = Path(path_or_name)
    if not path.is_file():
        raise AdaptkitError(f"policy {str(path_or_name)!r}: not 'trot' and not a file")
    try:
        # TorchScript's own loader rebuilds code from the archive's TorchScript source, never
        # from Python pickles; a torch.save file is not an archive of that kind and fails here
        with warnings.catch_warnings():  # "torch.jit.load is deprecated": still the safe loader
            warnings.simplefilter("ignore", DeprecationWarning)
            module: Any = torch.jit.load(str(path), map_location="cpu")
    except RuntimeError:
        module = _load_state_dict_expert(spec, path)
    if not callable(module):
        raise AdaptkitError(f"policy file {path} does not hold a callable torch module")
    return TorchPolicy(module, str(path))
