"""Evaluation: batched KV-cached in-context rollouts, per-episode curves, zero-shot vs fine-tuned.

Modules: resolve (group/stats choice), policies, rollout, report (evaluate), compare, plot.
"""

from adaptkit.evaluate.compare import CompareReport, compare
from adaptkit.evaluate.policies import DemonstratorPolicy, ModelPolicy, Policy, StandPolicy
from adaptkit.evaluate.report import EvalReport, evaluate, evaluate_policy, summarize
from adaptkit.evaluate.resolve import Resolution, resolve
from adaptkit.evaluate.rollout import EpisodeRecord, RolloutResult, rollout

__all__ = [
    "CompareReport",
    "DemonstratorPolicy",
    "EpisodeRecord",
    "EvalReport",
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
