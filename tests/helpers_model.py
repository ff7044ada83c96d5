"""Tiny-model factories for tests (any area may import these)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from adaptkit.ckpt.checkpoint import save_checkpoint
from adaptkit.meta import CheckpointMeta, Stats
from adaptkit.model import GroupDims, ModelConfig, Vintix
from adaptkit.robot import CANONICAL_JOINTS, LOCOMOTION_OBS_NAMES, RobotSpec

TINY: dict[str, Any] = dict(
    observation_emb_dim=16,
    action_emb_dim=8,
    reward_emb_dim=8,
    transformer_depth=2,
    transformer_heads=4,
    intermediate_size=64,
    context_len=32,
)
# Two groups with different dims, like a base pretrained on a quadruped and an arm.
TINY_GROUPS = {"quadruped_locomotion": GroupDims(45, 12), "arm": GroupDims(7, 3)}
TINY_TASKS = {
    "go2_walking": "quadruped_locomotion",
    "a1_walking": "quadruped_locomotion",
    "reach": "arm",
}


def tiny_config(**overrides: Any) -> ModelConfig:
    return ModelConfig(**{**TINY, **overrides})


def tiny_model(
    config: ModelConfig | None = None, groups: dict[str, GroupDims] | None = None, seed: int = 0
) -> Vintix:
    torch.manual_seed(seed)
    model = Vintix(config or tiny_config(), TINY_GROUPS if groups is None else groups)
    return model.eval()


def tiny_stats(obs_dim: int, act_dim: int, seed: int = 0) -> Stats:
    g = torch.Generator().manual_seed(seed)
    return Stats(
        obs_mean=tuple(torch.randn(obs_dim, generator=g).tolist()),
        obs_std=tuple((torch.rand(obs_dim, generator=g) + 0.5).tolist()),
        acs_mean=tuple(torch.randn(act_dim, generator=g).tolist()),
        acs_std=tuple((torch.rand(act_dim, generator=g) + 0.5).tolist()),
    )


def tiny_metadata(
    groups: dict[str, GroupDims] | None = None, tasks: dict[str, str] | None = None
) -> dict[str, Any]:
    """Complete metadata in the reference format (plus a pass-through extra key)."""
    groups = TINY_GROUPS if groups is None else groups
    tasks = TINY_TASKS if tasks is None else tasks
    out = {}
    for i, (task, g) in enumerate(tasks.items()):
        d = groups[g]
        out[task] = {
            "group_name": g,
            "observation_shape": {"proprio": [d.obs_dim]},
            "action_dim": d.act_dim,
            "action_type": "continuous",
            "reward_scale": 1.0,
            **tiny_stats(d.obs_dim, d.act_dim, seed=i).to_dict(),
            "extra_key": "passes through",
        }
    return out


def tiny_meta(
    groups: dict[str, GroupDims] | None = None, tasks: dict[str, str] | None = None
) -> CheckpointMeta:
    """tiny_metadata, parsed (what adaptkit's own code passes around)."""
    return CheckpointMeta.parse(tiny_metadata(groups, tasks))


def reference_config(model: Vintix) -> dict[str, Any]:
    """A config.json as the reference training script writes it (model + data/optim keys)."""
    cfg = {k: v for k, v in model.config.model_dict().items() if k != "token_order"}
    cfg.update(
        trajectory_sparsity=16,
        lr=3e-4,
        betas=[0.9, 0.99],
        weight_decay=0.1,
        precision="bf16",
        grad_accum_steps=1,
        warmup_ratio=0.05,
        epochs=2,
        batch_size=8,
        save_every=1,
        seed=5,
        dataset_config_paths=["configs/pretrain.yaml"],
    )
    return cfg


def write_reference_checkpoint(
    path: Path, model: Vintix, metadata: dict[str, Any], config: dict[str, Any] | None = None
) -> Path:
    """Write the three files by hand, exactly in the reference layout (not via adaptkit)."""
    path.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path / "model.pth")
    (path / "metadata.json").write_text(json.dumps(metadata))
    (path / "config.json").write_text(json.dumps(config or reference_config(model)))
    return path


def tiny_checkpoint(tmp_path: Path, seed: int = 0, name: str = "base") -> Path:
    """A saved tiny base checkpoint: {tmp_path}/{name}/0001_epoch."""
    model = tiny_model(seed=seed)
    path = tmp_path / name / "0001_epoch"
    return save_checkpoint(path, model, tiny_meta(), reference_config(model))


def make_spec(
    name: str = "newbot", group: str | None = None, obs_dim: int = 45, act_dim: int = 12
) -> RobotSpec:
    obs = LOCOMOTION_OBS_NAMES if obs_dim == 45 else tuple(f"o{i}" for i in range(obs_dim))
    joints = CANONICAL_JOINTS if act_dim == 12 else tuple(f"j{i}" for i in range(act_dim))
    return RobotSpec(
        name=name,
        task=f"{name}_walking_ad",
        group=group or f"{name}_locomotion",
        obs_names=obs,
        joint_names=joints,
        default_joint_angles=(0.1,) * act_dim,
    )


def random_batch(
    dims: GroupDims, b: int = 2, t: int = 8, seed: int = 0, episode_len: int = 5
) -> dict[str, torch.Tensor]:
    """Inputs (and a target) for one group; episodes of `episode_len` steps."""
    g = torch.Generator().manual_seed(seed)
    return {
        "obs": torch.randn(b, t, dims.obs_dim, generator=g),
        "prev_act": torch.randn(b, t, dims.act_dim, generator=g),
        "prev_rew": torch.randn(b, t, generator=g),
        "step_num": (torch.arange(t) % episode_len).repeat(b, 1),
        "target": torch.randn(b, t, dims.act_dim, generator=g),
    }
