"""What issue 35's checks cost, each against the same thing without the check, in one run:

- the input guard per control step (a NaN/inf/|x| > 1e6 observation or reward refused before it
  enters the context): `load_policy(...).act` in-process, the TorchScript file's `act`, and the
  ONNX file's run, each beside the same runtime with the guard taken out;
- the shipped base's fingerprint check when it is loaded.

    OMP_NUM_THREADS=1 python -W ignore bench/bench_input_guard.py [--steps 1000] [--context 256]

The model is the default base shipped with adaptkit (hidden 128, 3 layers), driven for Go1 with
random observations. Medians and p99 in microseconds per step; one thread.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch


def _timed(fn, steps: int) -> tuple[float, float]:
    times = []
    for t in range(steps):
        start = time.perf_counter()
        fn(t)
        times.append(time.perf_counter() - start)
    us = np.array(times[steps // 10 :]) * 1e6  # the first tenth warms up
    return float(np.median(us)), float(np.percentile(us, 99))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--context", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(1)

    import adaptkit
    import adaptkit.export.robot_policy as robot_policy
    from adaptkit.bootstrap.ship import SHIPPED_BASE
    from adaptkit.ckpt.checkpoint import check_recorded_fingerprint, load_state_dict_file
    from adaptkit.ckpt.layout import latest_checkpoint
    from adaptkit.ckpt.load import load_checkpoint
    from adaptkit.evaluate import EvalSettings
    from adaptkit.export.build import export_checkpoint, policy_step
    from adaptkit.export.formats import onnx as onnx_format
    from adaptkit.export.step import StatefulPolicy
    from adaptkit.plugins import get_registry

    go1 = get_registry().robot("go1")
    settings = EvalSettings(data_dir=None, context_len=args.context, device="cpu")
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(args.steps, 45)).astype(np.float32)
    rows = []

    # in-process: load_policy's act, with and without its numpy check
    def in_process(guarded: bool) -> tuple[float, float]:
        policy = adaptkit.load_policy(SHIPPED_BASE, "go1", settings=settings)
        real = robot_policy.check_input
        if not guarded:
            robot_policy.check_input = lambda name, x: None
        try:
            return _timed(lambda t: policy.act(obs[t], 0.1), args.steps)
        finally:
            robot_policy.check_input = real

    rows += [("in-process act", in_process(True), in_process(False))]

    # TorchScript: the scripted policy, and the same with _check a no-op
    class Unguarded(StatefulPolicy):
        def _check(self, name: str, x: torch.Tensor) -> None:
            pass

    ckpt = load_checkpoint(SHIPPED_BASE)
    ckpt.model.float()
    from adaptkit.evaluate.policies import ModelPolicy

    mp = ModelPolicy.from_checkpoint(ckpt, go1, settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = {
            kind: torch.jit.script(cls(policy_step(mp, in_place=True)))
            for kind, cls in (("guarded", StatefulPolicy), ("unguarded", Unguarded))
        }
    tobs = torch.as_tensor(obs)
    reward = torch.tensor(0.1)

    def ts(kind: str) -> tuple[float, float]:
        m = scripted[kind]
        m.reset(1)
        with torch.no_grad():
            return _timed(lambda t: m.act(tobs[t], reward), args.steps)

    rows += [("TorchScript act", ts("guarded"), ts("unguarded"))]

    # ONNX: the exported file, and the same export without its guard nodes
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    if ort is not None:
        root = Path(tempfile.mkdtemp())
        guard = onnx_format.guard_inputs
        files = {}
        for kind in ("guarded", "unguarded"):
            if kind == "unguarded":
                onnx_format.guard_inputs = lambda path: None
            try:
                res = export_checkpoint(SHIPPED_BASE, go1, root / kind, "onnx", settings)
            finally:
                onnx_format.guard_inputs = guard
            files[kind] = (res.policy_file, res.sidecar)

        def onnx_run(kind: str) -> tuple[float, float]:
            path, side = files[kind]
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
            s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            m = side["model"]
            cache = (m["layers"], 1, m["heads"], side["context_len"], m["head_dim"])
            state = {
                "prev_action": np.zeros((1, 12), np.float32),
                "step_index": np.zeros(1, np.int64),
                "position": np.zeros((), np.int64),
                "k_cache": np.zeros(cache, np.float32),
                "v_cache": np.zeros(cache, np.float32),
            }
            r = np.array([0.1], np.float32)

            def step(t: int) -> None:
                _, *rest = s.run(None, {"obs": obs[t : t + 1], "reward": r} | state)
                state.update(zip(state, rest, strict=True))

            return _timed(step, args.steps)

        rows += [("ONNX Runtime run", onnx_run("guarded"), onnx_run("unguarded"))]

    print(f"context {args.context}, {args.steps} steps, 1 thread; microseconds per step")
    head = ("runtime", "guarded med/p99", "unguarded med/p99", "guard (median)")
    print(f"{head[0]:18s} {head[1]:>18s} {head[2]:>19s} {head[3]:>15s}")
    for name, (gm, gp), (um, up) in rows:
        print(f"{name:18s} {gm:8.1f} /{gp:8.1f} {um:9.1f} /{up:8.1f} {gm - um:+12.1f} us")

    # the shipped base's fingerprint check, against the whole load
    epoch = latest_checkpoint(SHIPPED_BASE)
    loads, checks = [], []
    for _ in range(20):
        start = time.perf_counter()
        load_checkpoint(SHIPPED_BASE)
        loads.append(time.perf_counter() - start)
        sd = load_state_dict_file(epoch / "model.pth")
        start = time.perf_counter()
        check_recorded_fingerprint(epoch, sd)
        checks.append(time.perf_counter() - start)
    size = (epoch / "model.pth").stat().st_size / 1e6
    print(
        f"shipped base ({size:.1f} MB): load_checkpoint median {np.median(loads) * 1e3:.1f} ms, "
        f"of which the fingerprint check {np.median(checks) * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
