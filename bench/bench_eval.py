"""Evaluation rollout: policy time vs simulator time per control step, and env-steps/s.

A default-size model (ModelConfig(), context as given) with one group for the robot, 100 envs,
the batched KV-cached ModelPolicy against the real LocomotionEnv. The KV cache always attends over
all `window` slots (empty ones masked), so a step costs the same from the first step on as with a
full cache: no warm-up needed. The stand-still policy gives the bare simulator rate.

    .venv/bin/python bench/bench_eval.py [--envs 100] [--contexts 1024,256] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from adaptkit.evaluate import ModelPolicy, StandPolicy, rollout
from adaptkit.evaluate.resolve import Resolution
from adaptkit.meta import Stats
from adaptkit.model import GroupDims, ModelConfig, Vintix
from adaptkit.plugins import get_registry
from adaptkit.sim.env import LocomotionEnv


def _resolution(spec) -> Resolution:
    return Resolution(
        group=spec.group,
        task=spec.task,
        mode="native",
        stats_source="bench: unit stats",
        stats=Stats(
            (0.0,) * spec.obs_dim,
            (1.0,) * spec.obs_dim,
            (0.0,) * spec.action_dim,
            (1.0,) * spec.action_dim,
        ),
        reward_scale=1.0,
        action_dim=spec.action_dim,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--robot", default="minicheetah")
    ap.add_argument("--envs", type=int, default=100)
    ap.add_argument("--contexts", default="1024,256", help="KV-cache windows, comma-separated")
    ap.add_argument("--steps", type=int, default=100, help="timed control steps per run")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (eval default: 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = get_registry().robot(args.robot)
    cfg = ModelConfig()
    print(
        f"robot {spec.name}, {args.envs} envs, {args.steps} control steps, model "
        f"{cfg.hidden_dim} wide x {cfg.transformer_depth} layers x {cfg.transformer_heads} heads, "
        f"torch threads {args.threads}"
    )

    def run(policy):
        env = LocomotionEnv(spec, args.envs, seed=0, episode_length=1000)
        return rollout(policy, env, episodes=None, max_steps=args.steps)

    stand = run(StandPolicy(spec.action_dim))
    cols = f"{'policy ms':>10s}{'sim ms':>8s}{'total ms':>10s}{'env-steps/s':>13s}{'policy %':>10s}"
    print(f"{'':26s}{cols}")
    print(
        f"{'simulator only (stand)':26s}{'-':>10s}{1e3 * stand.sim_s / stand.steps:8.2f}"
        f"{1e3 * stand.wall_s / stand.steps:10.2f}{stand.steps_per_s:13.0f}{'-':>10s}"
    )
    for ctx in (int(c) for c in args.contexts.split(",")):
        torch.manual_seed(0)
        model = Vintix(ModelConfig(context_len=ctx), {spec.group: GroupDims(45, 12)}).eval()
        r = run(ModelPolicy(model, _resolution(spec), context_len=ctx, threads=args.threads))
        share = 100 * r.policy_s / (r.policy_s + r.sim_s)
        print(
            f"{f'model, context {ctx}':26s}{1e3 * r.policy_s / r.steps:10.2f}"
            f"{1e3 * r.sim_s / r.steps:8.2f}{1e3 * r.wall_s / r.steps:10.2f}"
            f"{r.steps_per_s:13.0f}{share:9.0f}%"
        )
        ref_ms = _full_recompute_ms(model, spec.group, ctx, args.envs)
        print(
            f"{'  fork way (recompute)':26s}{ref_ms:10.0f}   (est.: full window per env, no cache)"
        )


@torch.inference_mode()
def _full_recompute_ms(model: Vintix, group: str, ctx: int, envs: int, sample: int = 4) -> float:
    """The reference's per-step cost: a full `ctx`-token forward for each env, timed on `sample`
    envs and scaled to `envs`."""
    obs, act = torch.randn(1, ctx, 45), torch.randn(1, ctx, 12)
    rew, step = torch.randn(1, ctx), torch.arange(ctx)[None] % 1000
    model(group, obs, act, rew, step)  # warm-up
    t = time.perf_counter()
    for _ in range(sample):
        model(group, obs, act, rew, step)
    return 1e3 * (time.perf_counter() - t) / sample * envs


if __name__ == "__main__":
    main()
