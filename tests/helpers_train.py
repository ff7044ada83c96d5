"""Tiny learning histories and configs for the training tests (made on the fly, no downloads)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from adaptkit.data.history import HistoryWriter

TINY_MODEL = {
    "observation_emb_dim": 8,
    "action_emb_dim": 4,
    "reward_emb_dim": 4,
    "transformer_depth": 1,
    "transformer_heads": 2,
    "intermediate_size": 32,
    "context_len": 8,
}


def write_task(
    folder: Path,
    obs_dim: int,
    act_dim: int,
    histories: int = 2,
    steps: int = 120,
    episode_len: int = 30,
    seed: int = 0,
) -> Path:
    """Histories whose action is a fixed linear map of the observation plus a little noise."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(obs_dim, act_dim)).astype(np.float32) / np.sqrt(obs_dim)
    for h in range(histories):
        obs = rng.normal(size=(steps, obs_dim)).astype(np.float32) * 2.0 + 1.0
        act = obs @ w + 0.05 * rng.normal(size=(steps, act_dim)).astype(np.float32)
        rew = rng.normal(size=steps).astype(np.float32)
        step_num = np.arange(steps) % episode_len
        with HistoryWriter(folder / f"history_{h}.h5", obs_dim, act_dim, chunk_size=50) as wr:
            wr.append(obs, act, rew, step_num)
    return folder


def write_config(path: Path, tasks: dict[str, tuple[str, str]]) -> Path:
    """tasks: name -> (folder relative to data_dir, group)."""
    body = {
        task: {
            "type": "default",
            "path": folder,
            "group": group,
            "reward_scale": 1.0,
            "episode_sparsity": 1,
        }
        for task, (folder, group) in tasks.items()
    }
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def make_world(root: Path, mc_steps: int = 120) -> dict[str, Path]:
    """data/ with a Go1-like task (45/12) and Mini Cheetah histories, and a pretrain config."""
    data = root / "data"
    write_task(data / "go1", 45, 12, seed=1)
    write_task(data / "minicheetah_trajectories", 45, 12, steps=mc_steps, seed=2)
    write_task(data / "arm", 7, 3, seed=3)
    cfg = write_config(root / "pretrain.yaml", {"go1_walking": ("go1", "quadruped_locomotion")})
    return {"data": data, "pretrain_config": cfg}


def tiny_train(**overrides):
    from adaptkit.train import TrainConfig

    base = dict(epochs=2, batch_size=8, lr=3e-3, warmup_ratio=0.1)
    return TrainConfig(**{**base, **overrides})


def job(robot, base, data, name, save_dir, train=None, **kw):
    """A FinetuneJob with the tests' tiny training settings (unless `train` is given)."""
    from adaptkit.train import FinetuneJob

    return FinetuneJob(
        robot=robot,
        pretrained_path=base,
        data_dir=data,
        name=name,
        save_dir=save_dir,
        train=train or tiny_train(),
        **kw,
    )


def state_dict(path: Path) -> dict:
    import torch

    return torch.load(Path(path) / "model.pth", map_location="cpu", weights_only=True)


def torchrun(script: Path, cwd: Path, timeout: int) -> subprocess.CompletedProcess:
    """Run `script` under torchrun with 2 local processes, outside any DDP environment of the
    caller; fails the test with the output tail if a rank fails."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(script)],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def lora_finetune(root: Path, **kw):
    """A tiny base pretrained on make_world's Go1-like task and a LoRA (rank 2) fine-tune of a
    new Mini Cheetah group on it: (base run, fine-tune run, the world's paths)."""
    from adaptkit.plugins import get_registry
    from adaptkit.train import finetune, pretrain

    paths = make_world(root)
    base = pretrain(
        [paths["pretrain_config"]], paths["data"], "base", root / "models", TINY_MODEL,
        tiny_train(epochs=1),
    )  # fmt: skip
    robot = get_registry().robot("minicheetah")
    run = finetune(
        job(robot, base.run_dir, paths["data"], "mc", root / "runs", tiny_train(epochs=1),
            lora_rank=2, **kw)
    )  # fmt: skip
    return base, run, paths
