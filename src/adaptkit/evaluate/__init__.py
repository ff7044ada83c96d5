"""Evaluation: batched KV-cached in-context rollouts, per-episode curves, zero-shot vs fine-tuned.

Modules: settings (EvalSettings), resolve (group/stats choice), policies (ModelPolicy), rollout
(the one loop), report (evaluate), compare, plot.
"""

from adaptkit.evaluate.compare import CompareReport, compare
from adaptkit.evaluate.policies import ModelPolicy
from adaptkit.evaluate.report import EvalReport, evaluate, evaluate_policy, summarize
from adaptkit.evaluate.resolve import Resolution, resolve
from adaptkit.evaluate.rollout import EpisodeRecord, RolloutResult, rollout
from adaptkit.evaluate.settings import EvalSettings
from adaptkit.sim.policy import Policy, StandPolicy

__all__ = [
    "CompareReport",
    "EpisodeRecord",
    "EvalReport",
    "EvalSettings",
    "ModelPolicy",
    "Policy",
    "Resolution",
    "RolloutResult",
    "StandPolicy",
    "compare",
    "evaluate",
    "evaluate_policy",
    "resolve",
    "rollout",
    "summarize",
]
