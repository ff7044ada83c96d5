"""Cost of the training pre-flight (every history checked) against the default fine-tune.

Writes Mini Cheetah-sized learning histories to a temp folder — what `adaptkit finetune
minicheetah` trains on by default: 8 histories × 15,000 steps, 45-dim obs, 12-dim actions,
1000-step episodes, 10,000-step chunks — then times, in one process:

- the bare read of every dataset of every chunk (what training cannot avoid);
- the pre-flight exactly as `finetune` runs it (`adaptkit.train.preflight.check_training_data`:
  dims, NaN/inf in every field, step_num, row counts, with the arrays kept for training), with
  the stats given and with the stats computed in the same pass;
- what the data path did before the pre-flight existed: a stats pass, then a read;
- the default 10-epoch fine-tune: by default extrapolated from timed optimiser steps of the real
  Trainer (default model, new group trained, trunk frozen, bf16, batch 32 × context 256); with
  --full the whole `finetune(job)` is run and timed (minutes on 2 cores).

    python bench/bench_preflight.py            # ≈ 1 min on 2 cores
    python bench/bench_preflight.py --full     # the real 10-epoch fine-tune
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from adaptkit.ckpt.checkpoint import save_checkpoint
from adaptkit.data.config import DatasetEntry
from adaptkit.data.history import DATASET_KEYS, HistoryWriter, list_history_files
from adaptkit.meta import CheckpointMeta, Stats, TaskMeta
from adaptkit.model import GroupDims, ModelConfig, Vintix
from adaptkit.plugins import load_registry
from adaptkit.train import FinetuneJob, TrainConfig, finetune
from adaptkit.train.preflight import check_training_data

EP = 1000


def write_data(folder: Path, histories: int, steps: int, chunk: int) -> None:
    rng = np.random.default_rng(0)
    for h in range(histories):
        with HistoryWriter(folder / f"history_{h:03d}.h5", 45, 12, chunk_size=chunk) as w:
            for start in range(0, steps, EP):
                n = min(EP, steps - start)
                w.append(
                    rng.normal(size=(n, 45)).astype(np.float32),
                    rng.uniform(-1, 1, size=(n, 12)).astype(np.float32),
                    rng.normal(size=n).astype(np.float32) * 0.02,
                    np.arange(n),
                )


def best_of(fn, repeat: int) -> float:
    """Seconds per call: the best of `repeat` (shared cores: the best is the least disturbed)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bare_read(files: list[Path]) -> None:
    for path in files:
        with h5py.File(path, "r") as f:
            for name in f:
                for key in DATASET_KEYS:
                    f[name][key][()]


def old_path(files: list[Path]) -> None:
    """Before the pre-flight: compute_stats read the files once (moments only), training read
    them again (read_history)."""
    from adaptkit.data.history import iter_chunks, read_history
    from adaptkit.data.moments import RunningMoments

    obs_m, act_m = RunningMoments(45), RunningMoments(12)
    for path in files:
        for _, chunk in iter_chunks(path):
            obs_m.update(chunk["proprio_observation"])
            act_m.update(chunk["action"])
    for path in files:
        read_history(path)


def make_base(root: Path, registry) -> Path:
    """A default-size base (random weights: timing only) with the Go1 group and task."""
    go1 = registry.robot("go1")
    dims = GroupDims(go1.obs_dim, go1.action_dim)
    stats = Stats((0.0,) * 45, (1.0,) * 45, (0.0,) * 12, (1.0,) * 12)
    meta = CheckpointMeta([TaskMeta.new(go1.task, go1.group, dims, stats, robot=go1.name)])
    torch.manual_seed(0)
    model = Vintix(ModelConfig(), meta.groups)
    return save_checkpoint(root / "base" / "0001_epoch", model, meta, {})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--histories", type=int, default=8)
    ap.add_argument("--steps", type=int, default=15_000, help="steps per history")
    ap.add_argument("--chunk", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--train-steps", type=int, default=8, help="timed optimiser steps")
    ap.add_argument("--full", action="store_true", help="run the whole 10-epoch fine-tune")
    args = ap.parse_args()
    torch.set_num_threads(2)
    registry = load_registry()
    mini = registry.robot("minicheetah")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data_dir = root / "data"
        write_data(data_dir / mini.data_path, args.histories, args.steps, args.chunk)
        entry = DatasetEntry.for_robot(mini, data_dir)
        files = list_history_files(entry.path)
        total = args.histories * args.steps
        print(
            f"data: {args.histories} histories x {args.steps:,} steps = {total:,} steps "
            f"(45/12 dims, {EP}-step episodes, {args.chunk:,}-step chunks)"
        )
        given = {mini.task: (Stats((0.0,) * 45, (1.0,) * 45, (0.0,) * 12, (1.0,) * 12), "given")}
        t_read = best_of(lambda: bare_read(files), args.repeat)
        t_given = best_of(lambda: check_training_data([entry], [mini], None, given), args.repeat)
        t_computed = best_of(
            lambda: check_training_data([entry], [mini], None, {mini.task: None}), args.repeat
        )
        t_old = best_of(lambda: old_path(files), args.repeat)
        print(f"bare read of every dataset:                     {t_read:7.3f} s")
        print(f"pre-flight, stats given (checks + arrays):      {t_given:7.3f} s")
        print(f"pre-flight, stats computed in the same pass:    {t_computed:7.3f} s")
        print(f"before: stats pass + read (no checks):          {t_old:7.3f} s")

        base = make_base(root, registry)
        cfg = TrainConfig.for_finetune("transformer")
        if args.full:
            job = FinetuneJob(mini, base, data_dir=data_dir, save_dir=root / "runs", train=cfg)
            t0 = time.perf_counter()
            result = finetune(job)
            t_train = time.perf_counter() - t0
            how = f"measured: finetune(job), {result.steps} optimiser steps, {t_train:.1f} s"
        else:
            steps = args.train_steps
            job = FinetuneJob(
                mini,
                base,
                data_dir=data_dir,
                save_dir=root / "probe",
                train=cfg.replace(epochs=1, max_steps_per_epoch=steps + 2, save_initial=False),
            )
            # the same fine-tune for 2 warm-up steps, then `steps` timed ones, from metrics.jsonl
            result = finetune(job)
            times = [
                json.loads(line)["time"]
                for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()
            ]
            per_step = (times[-1] - times[1]) / (len(times) - 2)
            full_job = FinetuneJob(mini, base, data_dir=data_dir, train=cfg)
            steps_per_epoch = _steps_per_epoch(full_job, entry, given)
            t_train = per_step * steps_per_epoch * cfg.epochs
            how = (
                f"extrapolated: {per_step:.3f} s/step x {steps_per_epoch} steps/epoch x "
                f"{cfg.epochs} epochs = {t_train:.1f} s"
            )
        print(f"default fine-tune ({cfg.epochs} epochs, {cfg.precision}, batch {cfg.batch_size}):")
        print(f"  {how}")
        print(
            f"pre-flight share of the fine-tune: {t_computed / t_train:.2%} (stats computed), "
            f"{t_given / t_train:.2%} (stats given); extra over the bare read: "
            f"{(t_computed - t_read) / t_train:.2%}"
        )


def _steps_per_epoch(job: FinetuneJob, entry: DatasetEntry, given) -> int:
    from adaptkit.data.windows import WindowDataset

    context = ModelConfig().context_len
    stats = {job.robot.task: given[job.robot.task][0]}
    dataset = WindowDataset([entry], stats, context, job.train.stride(context))
    return len(dataset) // job.train.batch_size  # drop_last, grad_accum 1, one process


if __name__ == "__main__":
    main()
