"""MuJoCo quadruped simulation: robot models, the batched locomotion env, the policy protocol,
demonstrators and learning-history collection."""

# First: MuJoCo reads its GL backend choice once, when it is imported (see _gl).
from adaptkit.sim import _gl  # noqa: F401
from adaptkit.sim.demonstrator import TorchPolicy, TrotDemonstrator, load_policy
from adaptkit.sim.env import LocomotionEnv
from adaptkit.sim.model import build_model
from adaptkit.sim.policy import Policy, StandPolicy

__all__ = [
    "LocomotionEnv",
    "Policy",
    "StandPolicy",
    "TorchPolicy",
    "TrotDemonstrator",
    "build_model",
    "load_policy",
]
