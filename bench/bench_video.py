"""Video benchmark: what filming a rollout costs, and that not filming costs nothing.

    .venv/bin/python bench/bench_video.py [--robot minicheetah] [--envs 16] [--steps 500]
        [--size 480x320] [--rounds 3] [--json]

Per frame: offscreen render of one env (MuJoCo renderer on the process's GL: EGL/llvmpipe on a
headless CPU machine), caption, and H.264 encode (PyAV). Per rollout (the demonstrator on
`--envs` envs, `--steps` control steps, best of `--rounds`): wall time with no recorder (the
path every rollout without --video takes), with one env filmed at 25 frames/s, and with a
recorder hook that does nothing (the cost of the hook itself). Ratios come from one run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from adaptkit.evaluate.rollout import rollout
from adaptkit.evaluate.video import Mp4Writer, Recorder, VideoSettings, caption
from adaptkit.plugins import load_registry
from adaptkit.sim import LocomotionEnv, load_demonstrator
from adaptkit.sim.render import SceneRenderer


def _rollout_s(spec, envs: int, steps: int, hook) -> float:
    env = LocomotionEnv(spec, envs, seed=0)
    try:
        t = time.perf_counter()
        rollout(load_demonstrator(spec), env, None, steps, on_step=hook)
        return time.perf_counter() - t
    finally:
        env.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--robot", default="minicheetah")
    ap.add_argument("--envs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--size", default="480x320")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    width, height = (int(x) for x in args.size.lower().split("x"))
    spec = load_registry().robot(args.robot)
    renderer = SceneRenderer(spec, width, height)
    out = Path(tempfile.mkdtemp())

    # per frame: render, caption, encode
    env = LocomotionEnv(spec, 1, seed=0)
    env.reset()
    frames, t_render = [], []
    policy = load_demonstrator(spec)
    policy.reset(1)
    obs = env.reset()
    for _ in range(100):
        obs, *_ = env.step(policy.act(obs, env))
        t = time.perf_counter()
        frames.append(renderer.render_env(env, 0))
        t_render.append(time.perf_counter() - t)
    env.close()
    t = time.perf_counter()
    captioned = [caption(f, ["label", "env 0 · episode 1 · return 1.23"]) for f in frames]
    t_caption = (time.perf_counter() - t) / len(frames)
    writer = Mp4Writer(out / "bench.mp4", 25)
    t = time.perf_counter()
    for f in captioned:
        writer.write(f)
    writer.close()
    t_encode = (time.perf_counter() - t) / len(frames)

    # per rollout: none vs a do-nothing hook vs one env filmed
    def noop(env, step):
        return None

    none, hook, filmed = [], [], []
    settings = VideoSettings(width=width, height=height)
    for r in range(args.rounds):
        none.append(_rollout_s(spec, args.envs, args.steps, None))
        hook.append(_rollout_s(spec, args.envs, args.steps, noop))
        rec = Recorder(renderer, settings, out / f"r{r}.mp4", "bench", args.envs)
        filmed.append(_rollout_s(spec, args.envs, args.steps, rec))
        rec.close()
    renderer.close()
    res = {
        "robot": args.robot,
        "size": f"{width}x{height}",
        "render_ms_per_frame": round(1e3 * float(np.median(t_render)), 2),
        "caption_ms_per_frame": round(1e3 * t_caption, 2),
        "encode_ms_per_frame": round(1e3 * t_encode, 2),
        "mp4_kb_per_s_of_video": round((out / "bench.mp4").stat().st_size / 1024 / 4.0, 1),
        "rollout_s": {
            "no_recorder": round(min(none), 3),
            "noop_hook": round(min(hook), 3),
            "one_env_filmed": round(min(filmed), 3),
        },
        "hook_overhead": round(min(hook) / min(none), 3),
        "filmed_over_unfilmed": round(min(filmed) / min(none), 3),
        "envs": args.envs,
        "steps": args.steps,
    }
    if args.json:
        print(json.dumps(res, indent=2))
        return
    for k, v in res.items():
        print(f"{k:24s} {v}")


if __name__ == "__main__":
    main()
