"""How the episodes of a learning history are played: the noise level and the gait hypothesis
of each episode, decided at its start from what the history has seen so far.

The executed action of an episode is ε·u + (1 − ε)·(mask ⊙ expert), u ~ U(−1, 1) per joint.
`mask` is all ones except where a curriculum tries a wrong joint-axis convention (thigh and calf
targets negated: the same gait wired the other way round, as a Mini Cheetah is to a Go2).

- `varied`: Vintix's noise distillation with a schedule of its own per history — a starting
  noise ε0 ∈ [0.3, 1], held for 0–2 episodes, then falling to 0 over 1–5 episodes with a shape
  p ∈ [0.5, 2], then noise-free. Together with windows that start anywhere in a history, the
  noise level at a window position says nothing about the noise there: only the context can.
- `trial`: a learner that must read its rewards. Every history starts with the gait wired the
  Unitree way (for a Mini-Cheetah-style body: wrong) at a noise level drawn per history
  (ε ∈ [0, 0.3], constant); after an episode whose return is below the midpoint between the
  body's standing still and its demonstrator, it switches to the other wiring; once both were
  tried it keeps the better. Which wiring a body needs is seen in its rewards (a gait wired
  wrongly often walks backwards without falling) and sometimes in its falls — never in its
  first episode's actions, which are the same for every body.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from adaptkit.errors import AdaptkitError

CURRICULA = ("varied", "trial")


def flip_mask(action_dim: int) -> np.ndarray:
    """Thigh and calf targets negated, hips kept (12 joints as 4 × (hip, thigh, calf))."""
    if action_dim % 3:
        raise AdaptkitError(f"a wiring flip needs (hip, thigh, calf) joints, got {action_dim}")
    return np.tile(np.array([1.0, -1.0, -1.0], np.float32), action_dim // 3)


@dataclass
class HistoryPlan:
    """One history's episodes: `episode(e, returns)` → (ε, action mask) at episode e's start."""

    curriculum: str
    rng: np.random.Generator
    action_dim: int
    signs: float = 1.0  # the body's thigh-axis sign: +1 Unitree-style, −1 Mini-Cheetah-style
    threshold: float = 0.0  # `trial`: a return below it counts as a failed wiring
    params: dict[str, float] = field(default_factory=dict)
    tried: dict[int, float] = field(default_factory=dict)  # `trial`: wiring → best return
    current: int = 0  # `trial`: 0 = the Unitree wiring, 1 = the other

    def __post_init__(self) -> None:
        r = self.rng
        if self.curriculum == "varied":
            self.params = {
                "eps0": float(r.uniform(0.3, 1.0)),
                "lead": int(r.integers(0, 3)),
                "decay": int(r.integers(1, 6)),
                "power": float(r.uniform(0.5, 2.0)),
            }
        elif self.curriculum == "trial":
            self.params = {"eps": float(r.uniform(0.0, 0.3))}
        else:
            raise AdaptkitError(f"curriculum: expected one of {', '.join(CURRICULA)}")

    def _noise(self, e: int) -> float:
        if self.curriculum == "trial":
            return self.params["eps"]
        p = self.params
        k = e - p["lead"]
        if k < 0:
            return p["eps0"]
        if k >= p["decay"]:
            return 0.0
        return p["eps0"] * (1.0 - (k / p["decay"]) ** p["power"]) ** (1.0 / p["power"])

    def _mask(self, wiring: int) -> np.ndarray:
        unitree = np.ones(self.action_dim, np.float32)
        if self.signs < 0:  # the body's own expert is Mini-Cheetah-wired: Unitree = flipped
            unitree = flip_mask(self.action_dim)
        return unitree if wiring == 0 else unitree * flip_mask(self.action_dim)

    def episode(self, e: int, returns: Sequence[float]) -> tuple[float, np.ndarray]:
        if self.curriculum == "trial":
            if e > 0:
                last = float(returns[-1])
                self.tried[self.current] = max(self.tried.get(self.current, -np.inf), last)
                if len(self.tried) == 2:
                    self.current = max(self.tried, key=self.tried.__getitem__)
                elif last < self.threshold:
                    self.current = 1 - self.current
            return self._noise(e), self._mask(self.current)
        return self._noise(e), np.ones(self.action_dim, np.float32)

    def describe(self) -> dict[str, float | int | str]:
        return {"curriculum": self.curriculum, **self.params}
