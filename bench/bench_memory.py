"""The memory plan vs what a fine-tune really peaks at (`/usr/bin/time -v`'s maximum resident
set size), at the default, the fork and the released sizes; one optimiser step each.

Each size gets a checkpoint with random weights (nothing is downloaded) and synthetic 45-dim
Mini Cheetah histories giving one optimiser step at its global batch; then the seed's fine-tune
line runs as its own process under `/usr/bin/time -v`:

    adaptkit finetune minicheetah --pretrained-path CKPT --dataset-config-paths CFG
        --data-dir DATA --freeze transformer --lr 1e-4 --epochs 1 --no-eval [--max-memory M]

    python bench/bench_memory.py                               # default + fork, default budget
    python bench/bench_memory.py --sizes fork --max-memory 4G  # the fork line within 4 GB
    python bench/bench_memory.py --sizes fork --compare-main OLD_CHECKOUT/src  # today's code too
    python bench/bench_memory.py --sizes fork --checkpointing  # the checkpointed plan

Sizes: default = the shipped base's (hidden 128, 3 layers, context 256, batch 32); fork =
hidden 256, 3 layers, 4 heads, MLP 128, dropout 0.1, context 2048, global batch 32 (65,536
timesteps: the issue's line); released = hidden 1024, 16 heads, MLP 4096 at context 2048 with
--released-depth layers (default 2: 20 take well over an hour a step here) and batch 4.
Prints per size: the plan's line, planned vs measured peak, their ratio, wall time and
timesteps/s; `--compare-main SRC` also runs the same line with PYTHONPATH=SRC (another
checkout's code, e.g. main before this change) at --main-batch windows (the unplanned code at
batch 32 peaks near 22 GB here, so compare rates at a batch that fits).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OBS, ACT = 45, 12

SIZES = {
    "default": dict(model={}, context=256, batch=32),
    "fork": dict(
        model=dict(
            observation_emb_dim=127, action_emb_dim=127, reward_emb_dim=2, transformer_depth=3,
            transformer_heads=4, intermediate_size=128, attn_dropout=0.1, residual_dropout=0.1,
            token_order="act,rew,obs",
        ),
        context=2048, batch=32,
    ),
    "released": dict(
        model=dict(
            observation_emb_dim=511, action_emb_dim=511, reward_emb_dim=2,
            transformer_heads=16, intermediate_size=4096,
        ),
        context=2048, batch=4,
    ),
}  # fmt: skip


def build(root: Path, size: str, depth: int | None) -> tuple[Path, Path, Path, int]:
    """(checkpoint, dataset config, data dir, batch) for `size` under root (made once)."""
    import torch

    from adaptkit.ckpt.checkpoint import save_checkpoint
    from adaptkit.data.config import write_dataset_config
    from adaptkit.data.history import write_history
    from adaptkit.meta import CheckpointMeta, Stats, TaskMeta
    from adaptkit.model import GroupDims, ModelConfig, Vintix

    spec = SIZES[size]
    context, batch = spec["context"], spec["batch"]
    model_kw = dict(spec["model"])
    if size == "released" and depth is not None:
        model_kw["transformer_depth"] = depth
    ckpt = root / size / "base" / "0001_epoch"
    data = root / size / "data"
    cfg = data / "minicheetah.yaml"
    if not (ckpt / "model.pth").is_file():
        torch.manual_seed(0)
        config = ModelConfig(**model_kw, context_len=context)
        group = GroupDims(33, ACT)  # an old group (the fork's quadruped_locomotion dims)
        model = Vintix(config, {"quadruped_locomotion": group})
        unit = Stats((0.0,) * 33, (1.0,) * 33, (0.0,) * ACT, (1.0,) * ACT)
        meta = CheckpointMeta([TaskMeta.new("go1_walking", "quadruped_locomotion", group, unit)])
        save_checkpoint(ckpt, model, meta, {"context_len": context})
    if not cfg.is_file():
        # one optimiser step: batch windows of `context` at the default stride context / 4
        stride = context // 4
        steps = context + batch * stride + 1
        rng = np.random.default_rng(0)
        write_history(
            data / "minicheetah" / "h0.h5",
            rng.normal(size=(steps, OBS)).astype(np.float32),
            rng.normal(size=(steps, ACT)).astype(np.float32),
            rng.normal(size=steps).astype(np.float32),
            np.arange(steps) % 1000,
        )
        write_dataset_config(
            cfg, {"minicheetah_walking_ad": {"type": "default", "path": "minicheetah",
                                          "group": "minicheetah_locomotion", "reward_scale": 1.0,
                                          "episode_sparsity": 1}},
        )  # fmt: skip
    return ckpt, cfg, data, batch


def run_line(
    ckpt: Path,
    cfg: Path,
    data: Path,
    batch: int,
    out: Path,
    max_memory: str | None,
    pythonpath: str | None = None,
    checkpointing: bool = False,
) -> dict:
    """The fine-tune line under /usr/bin/time -v: its plan line, peak RSS, wall, rate."""
    name = f"run{int(time.time() * 1000) % 10**8}"
    cmd = [
        "/usr/bin/time", "-v", sys.executable, "-m", "adaptkit", "finetune", "minicheetah",
        "--pretrained-path", str(ckpt), "--dataset-config-paths", str(cfg),
        "--data-dir", str(data), "--name", name, "--save-dir", str(out),
        "--freeze", "transformer", "--lr", "1e-4", "--epochs", "1", "--no-eval",
        "--batch-size", str(batch), "--save", "full", "--json",
    ]  # fmt: skip
    if max_memory:
        cmd += ["--max-memory", max_memory]
    if checkpointing:
        cmd += ["--activation-checkpointing"]
    env = {**os.environ, "COLUMNS": "200"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    text = r.stdout + r.stderr
    if r.returncode != 0:
        raise SystemExit(f"fine-tune failed ({r.returncode}):\n{text[-3000:]}")
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) * 1024
    start = r.stdout.find("{")
    result = json.loads(r.stdout[start:]) if start >= 0 else {}
    plan = next((n for n in result.get("notes", []) if n.startswith("memory plan")), None)
    planned = re.search(r"peak ≈ ([0-9.]+) (GiB|MiB)", plan) if plan else None
    unit = {"GiB": 2**30, "MiB": 2**20}
    return {
        "peak": peak,
        "plan": plan or "(no plan line: code without the memory plan)",
        "planned": float(planned.group(1)) * unit[planned.group(2)] if planned else None,
        "wall": wall,
        "tokens_per_s": result.get("tokens_per_s"),
        "train_seconds": result.get("seconds"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="default,fork")
    ap.add_argument("--max-memory", default=None, help="passed to the fine-tune")
    ap.add_argument("--checkpointing", action="store_true", help="--activation-checkpointing")
    ap.add_argument("--released-depth", type=int, default=2)
    ap.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "adaptkit-bench-memory"))
    ap.add_argument("--compare-main", default=None, metavar="SRC")
    ap.add_argument("--main-batch", type=int, default=8)
    args = ap.parse_args()
    root = Path(args.dir)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {root}")
    for size in args.sizes.split(","):
        ckpt, cfg, data, batch = build(root, size, args.released_depth)
        r = run_line(
            ckpt, cfg, data, batch, root / size / "runs", args.max_memory,
            checkpointing=args.checkpointing,
        )  # fmt: skip
        ratio = r["peak"] / r["planned"] if r["planned"] else float("nan")
        planned = r["planned"] / 2**30 if r["planned"] else float("nan")
        print(f"\n[{size}] {r['plan']}")
        print(
            f"[{size}] planned {planned:.2f} GiB, "
            f"measured peak RSS {r['peak'] / 2**30:.2f} GiB = {ratio:.2f}x the plan; "
            f"wall {r['wall']:.0f} s, training {r['train_seconds']} s, "
            f"{r['tokens_per_s']} timesteps/s (global batch {batch})"
        )
        if args.compare_main:
            b = min(args.main_batch, batch)
            m = run_line(ckpt, cfg, data, b, root / size / "runs", None, args.compare_main)
            n = run_line(ckpt, cfg, data, b, root / size / "runs", args.max_memory)
            print(
                f"[{size}] at batch {b}: {args.compare_main} peak {m['peak'] / 2**30:.2f} GiB, "
                f"{m['tokens_per_s']} timesteps/s; this checkout peak {n['peak'] / 2**30:.2f} "
                f"GiB, {n['tokens_per_s']} timesteps/s"
            )


if __name__ == "__main__":
    main()
