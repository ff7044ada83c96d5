"""Quadruped simulation: robot models, the batched locomotion env over a physics backend (MuJoCo,
or Genesis with the `genesis` extra: `LocomotionEnv(spec, n, sim="genesis")`), the policy
protocol, demonstrators and learning-history collection."""

# Before MuJoCo: it reads its GL backend choice once, when it is imported (see _gl).
from adaptkit.defaults import Sim
from adaptkit.sim import _gl  # noqa: F401
from adaptkit.sim.backend import make_backend
from adaptkit.sim.demonstrator import TorchPolicy, TrotDemonstrator, load_demonstrator
from adaptkit.sim.env import LocomotionEnv
from adaptkit.sim.policy import Policy, StandPolicy

__all__ = [
    "LocomotionEnv",
    "Policy",
    "Sim",
    "StandPolicy",
    "TorchPolicy",
    "TrotDemonstrator",
    "load_demonstrator",
    "make_backend",
]
