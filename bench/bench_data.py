"""Window-loader throughput vs the model's training step time (loader share of a step).

Writes a synthetic Mini-Cheetah-sized dataset (45-dim obs, 12-dim actions) to a temp folder,
then times: dataset construction, per-sample access (+ collate), vectorised batch access through
make_loader, and — when adaptkit.model.Vintix is importable — one AdamW training step of the
default-size model on the same batch. Keeps well under a minute on 2 CPU cores.

    .venv/bin/python bench/bench_data.py [--steps 80000] [--batch 32] [--context 256]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from adaptkit.data.config import DatasetEntry
from adaptkit.data.history import HistoryWriter
from adaptkit.data.stats import compute_stats
from adaptkit.data.windows import WindowDataset, collate_windows, make_loader

OBS, ACT, EP = 45, 12, 1000


def write_data(folder: Path, steps: int, histories: int) -> None:
    rng = np.random.default_rng(0)
    per = steps // histories
    for h in range(histories):
        with HistoryWriter(folder / f"history_{h}.h5", OBS, ACT) as w:
            for start in range(0, per, EP):  # one episode per append, as a collector would
                n = min(EP, per - start)
                w.append(
                    rng.normal(size=(n, OBS)).astype(np.float32),
                    rng.uniform(-1, 1, size=(n, ACT)).astype(np.float32),
                    rng.normal(size=n).astype(np.float32),
                    np.arange(n),
                )


def timed(fn, repeat: int) -> float:
    """Seconds per call (best of the second half, to skip warm-up noise on shared cores)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times[len(times) // 2 :])


def model_step(batch: dict, context: int) -> tuple[float, str] | None:
    try:
        from adaptkit.model import GroupDims, ModelConfig, Vintix, action_loss
    except ImportError:
        return None
    config = ModelConfig(context_len=context)
    model = Vintix(config, {batch["group"]: GroupDims(OBS, ACT)})
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    n_params = sum(p.numel() for p in model.parameters())

    def step() -> None:
        pred = model(
            batch["group"],
            batch["obs"],
            batch["prev_action"],
            batch["prev_reward"],
            batch["step_num"],
        )
        loss = action_loss(pred, batch["target"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    desc = (
        f"Vintix default ModelConfig (hidden {config.hidden_dim}, depth "
        f"{config.transformer_depth}, {n_params / 1e6:.2f}M params)"
    )
    return timed(step, 6), desc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=80_000, help="total steps in the dataset")
    ap.add_argument("--histories", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--context", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(2)
    B, L = args.batch, args.context

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "minicheetah_trajectories"
        t0 = time.perf_counter()
        write_data(folder, args.steps, args.histories)
        t_write = time.perf_counter() - t0
        files = sorted(folder.glob("*.h5"))
        t0 = time.perf_counter()
        stats = compute_stats(files)
        t_stats = time.perf_counter() - t0
        entry = DatasetEntry(
            "minicheetah_walking_ad", "default", folder, "minicheetah_locomotion", 1.0, 1
        )
        t0 = time.perf_counter()
        ds = WindowDataset([entry], {entry.task: stats}, context_len=L, stride=1)
        t_build = time.perf_counter() - t0

    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(ds), size=2000)
    t0 = time.perf_counter()
    for i in idx:
        ds[int(i)]
    per_sample = (time.perf_counter() - t0) / len(idx)

    picks = iter(rng.integers(0, len(ds), size=(10_000, B)))
    t_collate = timed(lambda: collate_windows([ds[int(i)] for i in next(picks)]), 20)
    loader = iter(make_loader(ds, batch_size=B, seed=0))
    t_batch = timed(lambda: next(loader), 40)
    batch = next(loader)

    print(
        f"dataset: {args.steps:,} steps in {args.histories} histories, obs {OBS}, act {ACT}; "
        f"{len(ds):,} windows of {L}+1"
    )
    print(
        f"  write {t_write:.2f}s ({args.steps / t_write:,.0f} steps/s), stats {t_stats:.2f}s, "
        f"WindowDataset build {t_build:.2f}s"
    )
    print(f"  ds[i]:                    {1 / per_sample:,.0f} samples/s")
    print(
        f"  collate_windows of ds[i]: {1 / t_collate:,.0f} batches/s "
        f"({B / t_collate:,.0f} samples/s) at batch {B} x context {L}"
    )
    print(
        f"  make_loader (get_batch):  {1 / t_batch:,.0f} batches/s "
        f"({B / t_batch:,.0f} samples/s) at batch {B} x context {L}"
    )
    result = model_step(batch, L)
    if result is None:
        print("  adaptkit.model.Vintix not importable: no training-step comparison")
        return
    t_step, desc = result
    print(f"model: {desc}, CPU fwd+bwd+AdamW: {t_step * 1e3:.1f} ms/step")
    print(
        f"  loader share of a step: {100 * t_batch / (t_batch + t_step):.2f}% "
        f"(loader {t_batch * 1e3:.2f} ms vs step {t_step * 1e3:.1f} ms)"
    )


if __name__ == "__main__":
    main()
