"""Release scale on this machine: the ≈330M-parameter Vintix (hidden 1024, 20 layers, 16 heads,
MLP 4096, 21 groups) with random weights — load, fine-tune at context 2048/8192, evaluate.

    python bench/bench_release.py build               # the checkpoint (1.3 GB, kept in --dir)
    python bench/bench_release.py load                # load time, peak RSS; groups/inspect time
    python bench/bench_release.py train --context 2048 [--full] [--no-checkpointing]
    python bench/bench_release.py eval --envs 16 --context 2048
    python bench/bench_release.py all                 # build + load + train 2048/8192 + eval

Nothing is downloaded: `build` writes random weights in the released layout. Every measurement
runs in a fresh subprocess, so its peak RSS (ru_maxrss: anonymous and file-backed pages that
were resident) is its own. `--device cuda` runs train/eval on a GPU (peak from
torch.cuda.max_memory_allocated); without one they are skipped, not faked.

FLOPs (multiply-add = 2) per token, model FLOPs as usual for MFU — recomputation by activation
checkpointing is not useful work and is reported separately:
  F_lin  = 2 · (weights of the nn.Linear layers a token passes through), trunk and new group
  F_att  = 2 · 2 · (T+1)/2 · hidden · layers   (QKᵀ and AV over the causal half: the blocked
           kernel skips the keys a query cannot see)
  frozen trunk = 2·F_lin(trunk) + 3·F_lin(group) + 3·F_att   (no weight gradients in the trunk)
  full         = 3·F_lin(trunk + group) + 3·F_att
  + recompute  = F_lin(trunk) + F_att when blocks are checkpointed
The rate is compared with torch.mm's bf16 rate measured in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

DEFAULT_DIR = Path(tempfile.gettempdir()) / "adaptkit-release"
OBS, ACT = 45, 12  # the new robot (and group g00's dims)


def _groups() -> dict:
    """21 groups of assorted widths, as a many-domain release would have."""
    from adaptkit.model import GroupDims

    return {f"g{i:02d}": GroupDims(OBS - (i % 5) * 6, ACT - (i % 3) * 2) for i in range(21)}


def _ckpt_path(args) -> Path:
    return Path(args.dir) / "release" / "0001_epoch"


def build(args) -> None:
    from adaptkit.ckpt.checkpoint import save_checkpoint
    from adaptkit.meta import CheckpointMeta, Stats, TaskMeta
    from adaptkit.model import ModelConfig, Vintix

    path = _ckpt_path(args)
    if (path / "model.pth").is_file():
        print(f"release checkpoint exists: {path}")
        return
    torch.manual_seed(0)
    t = time.perf_counter()
    model = Vintix(ModelConfig.released(), _groups())
    meta = CheckpointMeta(
        TaskMeta.new(
            f"task_{g}",
            g,
            d,
            Stats((0.0,) * d.obs_dim, (1.0,) * d.obs_dim, (0.0,) * d.act_dim, (1.0,) * d.act_dim),
        )
        for g, d in _groups().items()
    )
    save_checkpoint(path, model, meta, {"context_len": 8192})
    n = sum(p.numel() for p in model.parameters())
    size = (path / "model.pth").stat().st_size
    print(
        f"built {path}: {n / 1e6:.1f}M parameters, model.pth {size / 1e9:.2f} GB "
        f"in {time.perf_counter() - t:.0f} s"
    )


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _run_child(mode: str, args, extra: list[str]) -> dict:
    """Run one measurement in a fresh interpreter; it prints one JSON line last."""
    cmd = [
        sys.executable,
        __file__,
        f"_{mode}",
        "--dir",
        str(args.dir),
        "--threads",
        str(args.threads),
        "--device",
        args.device,
        *extra,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail)}
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- load ----------------------------------------------------------------------------------------
def child_load(args) -> None:
    from adaptkit.ckpt.load import load_checkpoint

    base = _peak_rss()
    t = time.perf_counter()
    ckpt = load_checkpoint(_ckpt_path(args))
    dt = time.perf_counter() - t
    weights = sum(p.numel() * p.element_size() for p in ckpt.model.parameters())
    print(
        json.dumps(
            {
                "seconds": dt,
                "peak_rss": _peak_rss(),
                "rss_before": base,
                "weights": weights,
                "fingerprint": ckpt.fingerprint[:16],
            }
        )
    )


def load(args) -> None:
    r = _run_child("load", args, [])
    if "error" in r:
        print("load failed:", r["error"])
        return
    w = r["weights"]
    print(
        f"load_checkpoint (mmap, one hashing pass): {r['seconds']:.1f} s; weights "
        f"{w / 1e9:.2f} GB; peak RSS {r['peak_rss'] / 1e9:.2f} GB = {r['peak_rss'] / w:.2f}× "
        f"the weights ({(r['peak_rss'] - r['rss_before']) / w:.2f}× above the "
        f"{r['rss_before'] / 1e9:.2f} GB of the interpreter with torch imported)"
    )
    exe = Path(sys.executable).with_name("adaptkit")
    for cmd in (["groups"], ["inspect"]):
        t = time.perf_counter()
        out = subprocess.run(
            [str(exe), *cmd, str(_ckpt_path(args)), "--json"], capture_output=True, text=True
        )
        ok = "ok" if out.returncode == 0 else f"failed: {out.stderr.strip()[-200:]}"
        print(f"adaptkit {cmd[0]} (CLI, whole process): {time.perf_counter() - t:.1f} s ({ok})")


# -- train ---------------------------------------------------------------------------------------
def _mm_rate(
    dtype: torch.dtype, device: torch.device, n: int = 2048, seconds: float = 1.5
) -> float:
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times)


def _linear_weights(modules) -> int:
    return sum(
        m.weight.numel() for mod in modules for m in mod.modules() if isinstance(m, nn.Linear)
    )


def child_train(args) -> None:
    from adaptkit.adapt.surgery import add_group, freeze
    from adaptkit.ckpt.load import load_checkpoint
    from adaptkit.data.config import DatasetEntry
    from adaptkit.data.history import write_history
    from adaptkit.data.windows import WindowDataset, make_loader
    from adaptkit.meta import Stats
    from adaptkit.robot import RobotSpec
    from adaptkit.train.config import TrainConfig
    from adaptkit.train.distributed import DistInfo
    from adaptkit.train.loop import Trainer, seed_everything
    from adaptkit.train.run_dir import RunDir

    device = torch.device(args.device)
    ctx = args.context
    if args.depth:  # the released widths with fewer layers, random: extrapolated to 20 below
        from adaptkit.ckpt.checkpoint import Checkpoint
        from adaptkit.meta import CheckpointMeta, TaskMeta
        from adaptkit.model import ModelConfig, Vintix

        torch.manual_seed(0)
        cfg0 = ModelConfig.released(transformer_depth=args.depth)
        g = {"g00": _groups()["g00"]}
        unit0 = Stats((0.0,) * OBS, (1.0,) * OBS, (0.0,) * ACT, (1.0,) * ACT)
        meta0 = CheckpointMeta([TaskMeta.new("task_g00", "g00", g["g00"], unit0)])
        ckpt = Checkpoint(Vintix(cfg0, g).to(device), meta0, cfg0, Path("."), {}, "")
    else:
        ckpt = load_checkpoint(_ckpt_path(args), device=device)
    model = ckpt.model
    spec = RobotSpec(
        name="newbot",
        task="newbot_walking",
        group="newbot_locomotion",
        obs_names=tuple(f"o{i}" for i in range(OBS)),
        joint_names=tuple(f"j{i}" for i in range(ACT)),
        default_joint_angles=(0.0,) * ACT,
    )
    unit = Stats((0.0,) * OBS, (1.0,) * OBS, (0.0,) * ACT, (1.0,) * ACT)
    seed_everything(0)
    add_group(model, ckpt.meta, spec, unit)
    freeze(model, "none" if args.full else "transformer", new_group=spec.group)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        steps = (args.steps + 1) * (ctx + 1) + 1
        rng = np.random.default_rng(0)
        write_history(
            root / "d" / "h.h5",
            rng.normal(size=(steps, OBS)).astype(np.float32),
            rng.normal(size=(steps, ACT)).astype(np.float32),
            rng.normal(size=steps),
            np.arange(steps) % 1000,
        )
        entry = DatasetEntry(spec.task, "default", root / "d", spec.group, 1.0, 1)
        ds = WindowDataset([entry], {spec.task: unit}, ctx, stride=ctx)
        loader = make_loader(ds, 1, shuffle=False, seed=0, drop_last=True)
        cfg = TrainConfig(
            epochs=1,
            lr=1e-4,
            batch_size=1,
            precision="bf16",
            activation_checkpointing=not args.no_checkpointing,
        )
        trainer = Trainer(
            model,
            loader,
            cfg,
            DistInfo(device=device),
            RunDir(root, "r"),
            lambda *a: root,
            ctx,
            find_unused=False,
        )
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        it = iter(loader)
        times = []
        for _ in range(args.steps):
            t = time.perf_counter()
            trainer.train_step(it)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else _peak_rss()
    cfg_m = model.config
    trunk = 2 * _linear_weights([model.transformer])
    group = 2 * _linear_weights(model.group_modules(spec.group))
    att = 2 * 2 * (ctx + 1) / 2 * cfg_m.hidden_dim * cfg_m.transformer_depth
    useful = (3 * (trunk + group) if args.full else 2 * trunk + 3 * group) + 3 * att
    recompute = (trunk + att) if trainer.checkpointing else 0.0
    step = min(times)  # best step: the machine is shared
    layer_in = 4 * ctx * cfg_m.hidden_dim  # what a checkpointed block keeps: its fp32 input
    print(
        json.dumps(
            {
                "context": ctx,
                "full": args.full,
                "checkpointing": trainer.checkpointing,
                "step_s": times,
                "tokens_per_s": ctx / step,
                "peak": peak,
                "model_flops": useful * ctx / step,
                "with_recompute": (useful + recompute) * ctx / step,
                "mm_bf16": _mm_rate(torch.bfloat16, device),
                "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
                "layer_in": layer_in,
                "weights": sum(p.numel() * p.element_size() for p in model.parameters()),
            }
        )
    )


def train(args) -> None:
    extra = ["--context", str(args.context), "--steps", str(args.steps)]
    extra += ["--full"] * args.full + ["--no-checkpointing"] * args.no_checkpointing
    extra += ["--depth", str(args.depth)] if args.depth else []
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("train: no CUDA device here — skipped")
        return
    r = _run_child("train", args, extra)
    what = (
        f"context {args.context}, batch 1, bf16, {'full' if args.full else 'frozen trunk'}, "
        f"checkpointing {'off' if args.no_checkpointing else 'on'}"
    )
    if "error" in r:
        print(f"train ({what}): did not complete: {r['error']}")
        return
    mm = r["mm_bf16"]
    print(
        f"train ({what}): {r['tokens_per_s']:.0f} timesteps/s (steps "
        f"{', '.join(f'{s:.1f}' for s in r['step_s'])} s); peak "
        f"{'GPU memory' if args.device.startswith('cuda') else 'RSS'} {r['peak'] / 2**30:.2f} GiB; "
        f"{r['model_flops'] / 1e9:.1f} GFLOP/s model = {100 * r['model_flops'] / mm:.0f}% of "
        f"torch.mm bf16 ({mm / 1e9:.0f} GFLOP/s); with recompute {r['with_recompute'] / 1e9:.1f} "
        f"GFLOP/s = {100 * r['with_recompute'] / mm:.0f}%; trainable {r['trainable']:,}"
    )
    if args.depth and args.depth < 20 and not args.full:
        # per layer: the step's time and one more checkpointed block input; the weights as built
        scale = 20 / args.depth
        peak20 = r["peak"] - r["weights"] + 1.32e9 + (20 - args.depth) * r["layer_in"]
        print(
            f"  extrapolated to 20 layers: ≈{r['tokens_per_s'] / scale:.1f} timesteps/s "
            f"(≈{min(r['step_s']) * scale:.0f} s per step), peak ≈{peak20 / 2**30:.2f} GiB "
            "(measured peak − these weights + 1.32 GB of released weights + one fp32 block "
            "input per extra layer)"
        )


# -- eval ----------------------------------------------------------------------------------------
def child_eval(args) -> None:
    from adaptkit.ckpt.load import load_checkpoint
    from adaptkit.evaluate.plan import kv_dtype, plan_kv_cache

    device = torch.device(args.device)
    ckpt = load_checkpoint(_ckpt_path(args), device=device, hash_weights=False)
    model = ckpt.model.eval()
    b, w = args.envs, args.context
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    dtype = kv_dtype("auto", weights)
    plan = plan_kv_cache(model.config, b, w, dtype, device, resident_bytes=weights).check()
    cache = model.new_cache(b, w, dtype=dtype)
    for k, v in zip(cache.k, cache.v, strict=True):  # a full cache: every step attends over w
        k.normal_()
        v.normal_()
    cache.slot_time.copy_(torch.arange(w, device=device))
    cache.t = w
    obs, act = torch.randn(b, OBS, device=device), torch.randn(b, ACT, device=device)
    rew, sn = torch.randn(b, device=device), torch.full((b,), 7, device=device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    with torch.inference_mode():
        model.step("g00", cache, obs, act, rew, sn)  # warm-up
        times = []
        for _ in range(args.steps):
            t = time.perf_counter()
            model.step("g00", cache, obs, act, rew, sn)
            sync()
            times.append(time.perf_counter() - t)
        win = [
            torch.randn(1, w, OBS, device=device),
            torch.randn(1, w, ACT, device=device),
            torch.randn(1, w, device=device),
            torch.arange(w, device=device)[None] % 1000,
        ]
        t = time.perf_counter()
        model("g00", *win)[:, -1]  # one env's whole window: the fork's way, per env per step
        sync()
        per_env = time.perf_counter() - t
    print(
        json.dumps(
            {
                "kv_ms": 1e3 * statistics.median(times),
                "recompute_ms": 1e3 * per_env * b,
                "per_env_ms": 1e3 * per_env,
                "kv_bytes": plan.bytes,
                "kv_dtype": str(dtype),
                "weights": weights,
                "peak_rss": _peak_rss(),
            }
        )
    )


def evaluate(args) -> None:
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("eval: no CUDA device here — skipped")
        return
    r = _run_child(
        "eval",
        args,
        ["--envs", str(args.envs), "--context", str(args.context), "--steps", str(args.steps)],
    )
    if "error" in r:
        print("eval failed:", r["error"])
        return
    print(
        f"eval, {args.envs} envs × context {args.context}: KV-cached step {r['kv_ms']:.0f} ms "
        f"per control step (cache {r['kv_bytes'] / 1e9:.2f} GB {r['kv_dtype']}, weights "
        f"{r['weights'] / 1e9:.2f} GB read per step); recomputing every env's window "
        f"{r['recompute_ms'] / 1e3:.0f} s per step ({r['per_env_ms'] / 1e3:.1f} s per env, × "
        f"{args.envs}): {r['recompute_ms'] / r['kv_ms']:.0f}× slower; peak RSS "
        f"{r['peak_rss'] / 2**30:.2f} GiB"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "what", choices=["build", "load", "train", "eval", "all", "_load", "_train", "_eval"]
    )
    ap.add_argument("--dir", default=str(DEFAULT_DIR))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--context", type=int, default=2048)
    ap.add_argument("--envs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=1, help="timed steps (train) / KV steps (eval)")
    ap.add_argument("--full", action="store_true", help="train: full fine-tune, not frozen trunk")
    ap.add_argument("--no-checkpointing", action="store_true")
    ap.add_argument(
        "--depth",
        type=int,
        default=0,
        help="train: the released widths with this many layers (random), extrapolated to 20",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    children = {"_load": child_load, "_train": child_train, "_eval": child_eval}
    if args.what in children:
        children[args.what](args)
        return
    print(f"torch {torch.__version__}, {args.threads} threads, device {args.device}")
    if args.what in ("build", "all"):
        build(args)
    if args.what in ("load", "all"):
        load(args)
    if args.what in ("train", "all"):
        contexts = [args.context] if args.what == "train" else [2048, 8192]
        for ctx in contexts:
            train(argparse.Namespace(**{**vars(args), "context": ctx}))
    if args.what in ("eval", "all"):
        if args.what == "all":
            args.steps = 5
        evaluate(args)


if __name__ == "__main__":
    main(sys.argv[1:])
