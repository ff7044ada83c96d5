"""MuJoCo quadruped simulation: robot models, batched locomotion env, experts, data collection."""

from adaptkit.sim.demonstrator import Policy, TorchPolicy, TrotDemonstrator, load_policy
from adaptkit.sim.env import LocomotionEnv
from adaptkit.sim.model import build_model
from adaptkit.sim.run import PolicyStats, evaluate_demonstrator, run_episodes

__all__ = [
    "LocomotionEnv",
    "Policy",
    "PolicyStats",
    "TorchPolicy",
    "TrotDemonstrator",
    "build_model",
    "evaluate_demonstrator",
    "load_policy",
    "run_episodes",
]
