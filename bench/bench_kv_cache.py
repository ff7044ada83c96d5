"""Per-step cost of batched KV-cached decoding vs recomputing the whole window per env, and the
cached step's memory traffic against the machine's measured memory bandwidth.

    .venv/bin/python bench/bench_kv_cache.py [--envs 100] [--context 1024] [--device cpu]

The cached step must read the whole cache (envs × context × layers × 2 × hidden × bytes) and
the weights once; nothing else it touches is large. Its bytes per second are compared with a
read bandwidth measured here, in the same process and thread count: `x.sum()` over a buffer far
larger than the caches (best of several), the physical limit of a step that streams the cache.

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


def read_bandwidth(device: torch.device, gib: float = 1.0, repeats: int = 8) -> float:
    """Bytes/s of the fastest of `repeats` full reads (sum) of a `gib` GiB fp32 buffer."""
    x = torch.ones(int(gib * 2**30) // 4, device=device)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        x.sum()
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return x.numel() * 4 / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", type=int, default=100)
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30, help="cached steps to time")
    ap.add_argument("--sample-envs", type=int, default=3, help="envs to time the recompute on")
    ap.add_argument("--kv-dtype", default="fp32", choices=["fp32", "bf16"])
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
    kv_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.kv_dtype]
    cache = model.new_cache(b, w, dtype=kv_dtype)
    for k, v in zip(cache.k, cache.v, strict=True):
        k.normal_()
        v.normal_()
    cache.slot_time.copy_(torch.arange(w, device=device))
    cache.t = w
    obs = torch.randn(b, dims.obs_dim, device=device)
    act = torch.randn(b, dims.act_dim, device=device)
    rew, sn = torch.randn(b, device=device), torch.full((b,), 7, device=device)

    @torch.inference_mode()
    def cached_step() -> None:
        model.step("quadruped_locomotion", cache, obs, act, rew, sn)

    # the cache and the bandwidth, measured alternately: the machine's load drifts
    t_cached, bandwidth = float("inf"), 0.0
    for _ in range(3):
        t_cached = min(t_cached, _time(cached_step, args.steps, device))
        bandwidth = max(bandwidth, read_bandwidth(device))
    cache_bytes = sum(k.numel() * k.element_size() for k in cache.k + cache.v)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    step_bytes = cache_bytes + weight_bytes

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
    rate = step_bytes / t_cached
    print(
        f"cached step reads {step_bytes / 1e6:.0f} MB ({args.kv_dtype} cache "
        f"{cache_bytes / 1e6:.0f} MB + weights {weight_bytes / 1e6:.1f} MB): "
        f"{rate / 1e9:.1f} GB/s = {100 * rate / bandwidth:.0f}% of the measured read bandwidth "
        f"({bandwidth / 1e9:.1f} GB/s, {args.threads} threads)"
    )


if __name__ == "__main__":
    main()
