"""`adaptkit.load_policy`: a checkpoint (or an exported file) as a policy for a control loop in
Python — `reset()`, `act(obs, reward) → action`, one robot or a batch of them.

The same object whatever the source: a run, an epoch folder, an adapter or a Hub reference runs
in process through adaptkit's evaluation policy (ModelPolicy); a policy.pt / policy.onnx that
`adaptkit export` wrote runs through torch or onnxruntime. Both keep the context across episodes
as the evaluation does; `start_episode()` marks an episode start, `reset()` forgets everything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from adaptkit.ckpt.hub import parse_hub_ref, resolve_hub_file
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate.policies import ModelPolicy
from adaptkit.evaluate.settings import EvalSettings
from adaptkit.export.build import recorded_robot
from adaptkit.export.formats import FORMATS
from adaptkit.export.inputs import check_input
from adaptkit.export.runtime import ExportedPolicy
from adaptkit.plugins import get_registry
from adaptkit.robot import RobotSpec
from adaptkit.sim.policy import Policy

# a file with a format's suffix (policy.pt, policy.onnx) is an exported policy
EXPORTED_SUFFIXES = tuple(Path(f.file).suffix for f in FORMATS.values())


class RobotPolicy:
    """A policy stepped by the caller: raw observation in, raw action out (the env's units:
    joint target = default pose + action_scale · action). `obs` [obs_dim] gives [act_dim];
    `obs` [B, obs_dim] (the batched form: B robots) gives [B, act_dim]."""

    def __init__(self, policy: Policy, robot: RobotSpec) -> None:
        self.policy = policy
        self.robot = robot  # in the observation layout the policy reads
        self.obs_dim, self.act_dim = robot.obs_dim, robot.action_dim
        self.batch = 0
        self._last: np.ndarray | None = None  # the previous action, once one was taken
        self._starts = np.zeros(0, bool)

    def reset(self, batch: int = 1) -> None:
        """Forget the context: the next act() starts a new context and episode."""
        if isinstance(batch, bool) or not isinstance(batch, int | np.integer) or batch < 1:
            raise AdaptkitError(f"reset: batch must be an integer >= 1, got {batch!r}")
        batch = int(batch)
        self.policy.reset(batch)
        self.batch = batch
        self._last = None
        self._starts = np.zeros(batch, bool)

    def start_episode(self, mask: Any = None) -> None:
        """The next act() begins a new episode (of the robots in `mask`, else all); the
        context is kept: in-context learning reads the earlier episodes. Before the first
        act() there is nothing to mark (that act begins an episode anyway)."""
        if mask is None:
            self._starts |= True
            return
        m = np.asarray(mask)
        if m.ndim > 1 or (m.ndim == 1 and self.batch and m.shape[0] != self.batch):
            raise AdaptkitError(
                f"start_episode: mask must be [{self.batch or 'B'}] (one per robot of the last "
                f"act), got shape {list(m.shape)}"
            )
        if self.batch:
            self._starts |= np.broadcast_to(m.astype(bool), (self.batch,))

    def act(self, obs: Any, reward: Any = 0.0) -> np.ndarray:
        """The action for `obs`; `reward` is the reward the previous action earned (unused at
        an episode's first step). An observation or reward that is NaN/inf or beyond
        ±INPUT_BOUND is refused (adaptkit.export.inputs), and the state stays as it was."""
        x = _array(obs, "obs")
        single = x.ndim == 1
        x = x[None] if single else x
        if x.ndim != 2 or x.shape[1] != self.obs_dim or x.shape[0] < 1:
            raise AdaptkitError(
                f"act: obs must be [{self.obs_dim}] or [B, {self.obs_dim}] with B >= 1, got "
                f"{list(np.shape(obs))}"
            )
        r = _array(reward, "reward")
        if r.size not in (1, x.shape[0]) or r.ndim > 1:
            raise AdaptkitError(
                f"act: reward must be a number or [{x.shape[0]}] (one per row of obs), got "
                f"shape {list(r.shape)}"
            )
        check_input("obs", x[0] if single else x)
        check_input("reward", r)
        if x.shape[0] != self.batch:
            self.reset(x.shape[0])
        if self._last is not None:
            rewards = np.array(np.broadcast_to(r.reshape(-1), (self.batch,)), np.float32)
            self.policy.observe(self._last, rewards, self._starts.copy())
            self._starts[:] = False
        action = np.asarray(self.policy.act(x.astype(np.float32), None), np.float32)
        self._last = action
        return action[0] if single else action

    def close(self) -> None:
        self.policy.close()

    def describe(self) -> dict[str, Any]:
        return self.policy.describe()


def _array(value: Any, name: str) -> np.ndarray:
    """`value` as float64 numbers, or a one-line error naming what it is (a string, a ragged
    list)."""
    try:
        if np.iscomplexobj(value):  # float() would drop the imaginary part without a word
            raise TypeError("complex")
        x = np.asarray(value, np.float64)  # checked before float32 could turn 1e39 into inf
    except (TypeError, ValueError):
        raise AdaptkitError(
            f"act: {name} must be real numbers (an array), got {_kind(value)}"
        ) from None
    return x


def _kind(value: Any) -> str:
    dtype = getattr(value, "dtype", None)
    return f"an array of {dtype}" if dtype is not None else type(value).__name__


def load_policy(
    source: str | Path,
    robot: str | RobotSpec | None = None,
    *,
    settings: EvalSettings | None = None,
) -> RobotPolicy:
    """A policy for `robot` (a name or spec; default: the robot a fine-tune run or an exported
    file records) from a checkpoint — run folder, NNNN_epoch folder, adapter, hf://ORG/NAME — or
    a file `adaptkit export` wrote (policy.pt, policy.onnx). `settings` as for evaluation
    (group, context_len, data_dir for zero-shot stats, token_order, base, device, threads)."""
    settings = settings or EvalSettings(data_dir=None)
    if robot is not None and not isinstance(robot, str | RobotSpec):
        raise AdaptkitError(
            f"load_policy: robot must be a robot's name or a RobotSpec, got "
            f"{type(robot).__name__} {robot!r}"
        )
    path = Path(str(source))
    ref = parse_hub_ref(source) if path.suffix in EXPORTED_SUFFIXES else None
    if ref is not None and ref.subfolder:  # a pushed export: hf://ORG/NAME/export/policy.pt
        path = resolve_hub_file(ref)
    registry = get_registry()
    if path.suffix in EXPORTED_SUFFIXES and not path.is_dir():
        exported = ExportedPolicy(path, threads=settings.threads or 1)
        exported.check_settings(settings)
        name = robot.name if isinstance(robot, RobotSpec) else robot or exported.meta["robot"]
        return RobotPolicy(exported, exported.robot_for(registry.robot(name)))
    if isinstance(robot, RobotSpec):
        spec = robot
    else:
        name = robot or recorded_robot(source)
        if name is None:
            raise AdaptkitError(f"load_policy: {source} records no robot; pass robot=NAME")
        spec = registry.robot(name)
    policy = ModelPolicy.from_checkpoint(
        source, spec, settings, robots=list(registry.robots.values())
    )
    return RobotPolicy(policy, policy.robot or spec)
