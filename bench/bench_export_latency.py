"""Per-step latency and memory of an exported policy (one robot, one thread) against today's
in-process policy (adaptkit.evaluate.ModelPolicy act + observe), in the same run.

    .venv/bin/python bench/bench_export_latency.py [--sizes default,release]
        [--contexts 256,1024,2048] [--steps 400] [--release-steps 40]

Random weights (latency does not depend on their values) for one Mini Cheetah group (obs 45,
act 12). The cache is a ring buffer whose every slot is attended (masked or not), so a step
costs the same from the first step on; a short warm-up then `--steps` timed steps per policy.
Figures: median and 99th percentile ms per step, the state (KV cache) bytes, the weights'
bytes, and the process's resident memory growth while the exported file was loaded and run.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from adaptkit.evaluate.policies import ModelPolicy
from adaptkit.evaluate.resolve import Resolution
from adaptkit.export.build import export_policy
from adaptkit.meta import Stats
from adaptkit.model import GroupDims, ModelConfig, Vintix
from adaptkit.plugins import get_registry

GROUP = "minicheetah_locomotion"
OBS, ACT = 45, 12


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def percentiles(times: list[float]) -> tuple[float, float]:
    ms = np.asarray(times) * 1e3
    return float(np.median(ms)), float(np.percentile(ms, 99))


def in_process(policy: ModelPolicy, obs: np.ndarray, warm: int, steps: int) -> list[float]:
    """ModelPolicy's act + observe per control step, as a rollout calls them."""
    policy.reset(1)
    rew, done = np.zeros(1, np.float32), np.zeros(1, bool)
    times = []
    for i in range(warm + steps):
        t = time.perf_counter()
        a = policy.act(obs[i % len(obs)][None], None)
        policy.observe(a, rew, done)
        times.append(time.perf_counter() - t)
    policy.close()
    return times[warm:]


def torchscript(path: Path, obs: np.ndarray, warm: int, steps: int) -> tuple[list[float], int]:
    before = rss_bytes()
    module = torch.jit.load(str(path))
    module.reset(1)
    reward = torch.zeros(())
    x = torch.as_tensor(obs)
    times = []
    for i in range(warm + steps):
        t = time.perf_counter()
        module.act(x[i % len(x)], reward)
        times.append(time.perf_counter() - t)
    return times[warm:], rss_bytes() - before


def onnx(path: Path, state: dict, obs: np.ndarray, warm: int, steps: int):
    import onnxruntime as ort

    before = rss_bytes()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    state = {k: v.numpy() for k, v in state.items()}
    reward = np.zeros(1, np.float32)
    times = []
    for i in range(warm + steps):
        t = time.perf_counter()
        _, *out = session.run(None, {"obs": obs[i % len(obs)][None], "reward": reward} | state)
        state = dict(zip(state, out, strict=True))
        times.append(time.perf_counter() - t)
    return times[warm:], rss_bytes() - before


def resolution(spec) -> Resolution:
    rng = np.random.default_rng(0)
    stats = Stats(
        obs_mean=tuple(rng.normal(size=OBS).tolist()),
        obs_std=tuple((0.5 + rng.random(OBS)).tolist()),
        acs_mean=(0.0,) * ACT,
        acs_std=(1.0,) * ACT,
    )
    return Resolution(GROUP, spec.task, "native", "bench", stats, 1.0, ACT, robot=spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="default,release")
    ap.add_argument("--contexts", default="256,1024,2048")
    ap.add_argument("--steps", type=int, default=400, help="timed steps, default model")
    ap.add_argument("--release-steps", type=int, default=40, help="timed steps, release size")
    ap.add_argument("--formats", default="torchscript,onnx")
    args = ap.parse_args()
    torch.set_num_threads(1)
    formats = args.formats.split(",")
    if "onnx" in formats:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            print("onnxruntime not installed (pip install 'adaptkit[onnx]'): ONNX skipped")
            formats.remove("onnx")
    spec = get_registry().robot("minicheetah")
    obs = np.random.default_rng(1).normal(size=(64, OBS)).astype(np.float32)
    print(f"torch {torch.__version__}, 1 thread; one robot (obs {OBS}, act {ACT}); ms per step")
    header = f"{'model':>8} {'context':>7} {'policy':>22} {'median':>8} {'p99':>8}  memory"
    print(header)
    for size in args.sizes.split(","):
        for ctx in [int(c) for c in args.contexts.split(",")]:
            cfg = (ModelConfig.released if size == "release" else ModelConfig)(context_len=ctx)
            torch.manual_seed(0)
            model = Vintix(cfg, {GROUP: GroupDims(OBS, ACT)}).eval()
            steps = args.release_steps if size == "release" else args.steps
            warm = max(5, steps // 10)
            weights = sum(p.numel() * p.element_size() for p in model.parameters())
            policy = ModelPolicy(model, resolution(spec), ctx, threads=1)
            cache = 2 * cfg.transformer_depth * ctx * cfg.hidden_dim
            mem = f"weights {weights / 2**20:.0f} MiB"

            med, p99 = percentiles(in_process(policy, obs, warm, steps))
            kv = cache * torch.tensor([], dtype=policy.cache_dtype).element_size()
            label = f"in-process ({str(policy.cache_dtype).removeprefix('torch.')} KV)"
            print(f"{size:>8} {ctx:>7} {label:>22} {med:8.3f} {p99:8.3f}  {mem}, "
                  f"KV {kv / 2**20:.1f} MiB")  # fmt: skip
            with tempfile.TemporaryDirectory() as tmp:
                for fmt in formats:
                    res = export_policy(policy, spec, tmp, fmt)
                    if fmt == "torchscript":
                        times, grew = torchscript(res.policy_file, obs, warm, steps)
                    else:
                        state = policy_state(res.sidecar, ctx)
                        times, grew = onnx(res.policy_file, state, obs, warm, steps)
                    med, p99 = percentiles(times)
                    print(f"{size:>8} {ctx:>7} {fmt + ' (fp32 KV)':>22} {med:8.3f} {p99:8.3f}  "
                          f"KV {cache * 4 / 2**20:.1f} MiB, resident +{grew / 2**20:.0f} MiB "
                          f"(file {res.policy_file.stat().st_size / 2**20:.0f} MiB)")  # fmt: skip
                    gc.collect()
            del model, policy
            gc.collect()


def policy_state(sidecar: dict, ctx: int) -> dict[str, torch.Tensor]:
    m = sidecar["model"]
    shape = (m["layers"], 1, m["heads"], ctx, m["head_dim"])
    return {
        "prev_action": torch.zeros(1, sidecar["act_dim"]),
        "step_index": torch.zeros(1, dtype=torch.long),
        "position": torch.zeros((), dtype=torch.long),
        "k_cache": torch.zeros(shape),
        "v_cache": torch.zeros(shape),
    }


if __name__ == "__main__":
    main()
