"""Per-step cost of batched KV-cached decoding vs recomputing the whole window per env.

    .venv/bin/python bench/bench_kv_cache.py [--envs 100] [--context 1024] [--device cpu]

The KV-cached step is one forward of B new tokens against a full cache (B envs × context).
The reference's way (the quadruped fork) runs, for every env, a forward over its whole window
of `context` tokens and keeps only the last output; that is timed on a few envs and
extrapolated linearly to B (it is a Python loop over envs, so cost is linear in B).
"""

from __future__ import annotations

import argparse
import time

import torch

from adaptkit.model import GroupDims, ModelConfig, Vintix


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", type=int, default=100)
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30, help="cached steps to time")
    ap.add_argument("--sample-envs", type=int, default=3, help="envs to time the recompute on")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    dims = GroupDims(45, 12)
    config = ModelConfig(context_len=args.context)  # the default (small) model
    model = Vintix(config, {"quadruped_locomotion": dims}).to(device).eval()
    b, w = args.envs, args.context

    # A full cache: fill K/V with random values and mark every slot valid, so each cached step
    # attends over `context` tokens exactly as it would mid-rollout (and rolls the window).
    cache = model.new_cache(b, w)
    for k, v in zip(cache.k, cache.v, strict=True):
        k.normal_()
        v.normal_()
    cache.slot_time.copy_(torch.arange(w, device=device))
    cache.t = w
    obs = torch.randn(b, dims.obs_dim, device=device)
    act = torch.randn(b, dims.act_dim, device=device)
    rew, sn = torch.randn(b, device=device), torch.full((b,), 7, device=device)

    def cached_step() -> None:
        model.step("quadruped_locomotion", cache, obs, act, rew, sn)

    t_cached = _time(cached_step, args.steps, device)

    win_obs = torch.randn(1, w, dims.obs_dim, device=device)
    win_act = torch.randn(1, w, dims.act_dim, device=device)
    win_rew, win_sn = torch.randn(1, w, device=device), torch.arange(w, device=device)[None] % 1000

    @torch.no_grad()
    def recompute_some_envs() -> None:
        for _ in range(args.sample_envs):
            model("quadruped_locomotion", win_obs, win_act, win_rew, win_sn)[:, -1]

    t_env = _time(recompute_some_envs, 1, device) / args.sample_envs
    t_recompute = t_env * b

    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: hidden {config.hidden_dim}, {config.transformer_depth} layers, "
          f"{config.transformer_heads} heads, {n_params:,} params; device {device}, "
          f"{args.threads} threads")  # fmt: skip
    print(f"envs B={b}, context {w}")
    print(f"KV-cached step (one forward of {b} tokens):    {t_cached * 1e3:9.2f} ms/step")
    print(f"recompute window per env ({b} x {w} tokens):  {t_recompute * 1e3:9.2f} ms/step")
    print(f"  (timed on {args.sample_envs} envs: {t_env * 1e3:.1f} ms/env, x{b} extrapolated)")
    print(f"speed-up: {t_recompute / t_cached:.0f}x")


if __name__ == "__main__":
    main()
