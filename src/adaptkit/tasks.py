"""Task variants of the locomotion env: what the robot is asked to do and how much the world varies.

`walk` is the reference task (vx = 0.5 m/s, nominal mass and friction): the main job's and every
checkpoint's so far. `varied` is the harder one a study uses to ask whether a pretrained base
transfers where a single gait does not suffice: a forward-speed command drawn at every reset and
re-drawn every `resample_steps` within an episode, and the base's mass and the floor's friction
drawn per episode. The command is in the observation (its `command_*` columns); mass and
friction are not: a policy has to infer them from how the robot moves.

Lateral and yaw-rate commands stay 0 in `varied`: the trot demonstrator follows vx (its stride
feedback) but not them. A stride difference between the sides turned the robots by only 0–0.22
rad/s per rad/s commanded, and hip swings that stepped one robot sideways or turned it made
another fall (tried on all four robots).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from adaptkit.errors import AdaptkitError

Range = tuple[float, float]


@dataclass(frozen=True)
class TaskVariant:
    name: str
    description: str
    vx: Range = (0.5, 0.5)  # m/s, uniform in [low, high]
    vy: Range = (0.0, 0.0)  # m/s
    yaw: Range = (0.0, 0.0)  # rad/s
    resample_steps: int = 0  # the command is re-drawn every this many steps (0: at resets only)
    mass_scale: Range = (1.0, 1.0)  # × the base (trunk) body's mass and inertia
    friction: Range = (1.0, 1.0)  # the floor's sliding friction (it decides every contact)

    @property
    def varies_commands(self) -> bool:
        return any(lo != hi for lo, hi in (self.vx, self.vy, self.yaw))

    @property
    def varies_dynamics(self) -> bool:
        return self.mass_scale != (1.0, 1.0) or self.friction != (1.0, 1.0)

    def draw_commands(self, rng: np.random.Generator) -> np.ndarray:
        """One command (vx, vy, yaw rate) from an env's own random stream."""
        lo, hi = np.array([self.vx, self.vy, self.yaw]).T
        return lo + (hi - lo) * rng.uniform(0.0, 1.0, 3)

    def draw_dynamics(self, rng: np.random.Generator) -> tuple[float, float]:
        """(mass scale, friction) for one episode, from an env's own random stream."""
        u = rng.uniform(0.0, 1.0, 2)
        (m0, m1), (f0, f1) = self.mass_scale, self.friction
        return m0 + (m1 - m0) * u[0], f0 + (f1 - f0) * u[1]

    def describe(self) -> dict[str, Any]:
        return asdict(self)


TASKS: dict[str, TaskVariant] = {
    t.name: t
    for t in (
        TaskVariant("walk", "walk forward at vx = 0.5 m/s, nominal mass and friction (reference)"),
        TaskVariant(
            "varied",
            "forward-speed command vx 0.2–0.8 m/s re-drawn every 2 s; base mass ×0.8–1.25 and "
            "floor friction 0.4–1.2 drawn per episode",
            vx=(0.2, 0.8),
            resample_steps=100,
            mass_scale=(0.8, 1.25),
            friction=(0.4, 1.2),
        ),
    )
}
DEFAULT_TASK = "walk"


def get_task(task: TaskVariant | str | None) -> TaskVariant:
    """A task variant by name (None: `walk`), or a one-line error naming the choices."""
    if isinstance(task, TaskVariant):
        return task
    name = DEFAULT_TASK if task is None else str(task)
    if name not in TASKS:
        raise AdaptkitError(f"--task: expected one of {', '.join(TASKS)}, got {name!r}")
    return TASKS[name]
