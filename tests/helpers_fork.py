"""The quadruped fork's artifacts, built by hand from the format facts (SPEC.md), never with
adaptkit's writers: checkpoints (`NNNN_epoch/` with model.pth, metadata.json, config.json) and
learning histories (h5py, 50,000-step chunks, n+1 observation rows per n actions, task metadata
in `trajectories_env_*.json`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

# -- facts (SPEC.md: "The quadruped fork's artifacts") --------------------------------------------
FORK_SIZES = dict(
    observation_emb_dim=127,
    action_emb_dim=127,
    reward_emb_dim=2,
    hidden_dim=256,
    transformer_depth=3,
    transformer_heads=4,
    intermediate_size=128,
)
FORK_PARAMS = 1_231_706  # the fork's model: one 33/12 group
FORK_GROUP = "quadruped_locomotion"
FORK_OBS, FORK_ACT = 33, 12
FORK_CHUNK = 50_000
FORK_TASKS = ("go1_walking_ad", "go2_walking_ad", "a1_walking_ad")
# The fork's own training keys, left in its config.json (random_sample_frac, finetune_*).
FORK_TRAINING_KEYS = {
    "random_sample_frac": 0.1,
    "finetune_new_group": False,
    "finetune_freeze_encoder": False,
    "finetune_data_frac": 0.1,
}


def fork_config(context_len: int = 64, **sizes: Any) -> dict[str, Any]:
    """config.json as the fork writes it: the released keys with its sizes, the reference's
    data/optimiser keys, its own training keys, and no token_order."""
    return {
        **FORK_SIZES,
        "attn_dropout": 0.1,
        "residual_dropout": 0.1,
        "normalize_qk": True,
        "bias": True,
        "parallel_residual": False,
        "shared_attention_norm": False,
        "norm_class": "LayerNorm",
        "mlp_class": "GptNeoxMLP",
        "inner_ep_pos_enc": False,
        "norm_acs": False,
        "norm_obs": True,
        **sizes,
        "context_len": context_len,
        "trajectory_sparsity": 16,
        "lr": 3e-4,
        "betas": [0.9, 0.99],
        "weight_decay": 0.1,
        "precision": "bf16",
        "grad_accum_steps": 1,
        "warmup_ratio": 0.05,
        "epochs": 15,
        "batch_size": 32,
        "save_every": 1,
        "seed": 0,
        "dataset_config_paths": ["configs/quadruped_config.yaml"],
        **FORK_TRAINING_KEYS,
    }


def _linear(sd: dict, key: str, n_in: int, n_out: int, g: torch.Generator) -> None:
    sd[f"{key}.weight"] = torch.randn(n_out, n_in, generator=g) / n_in**0.5
    sd[f"{key}.bias"] = torch.randn(n_out, generator=g) * 0.01


def _norm(sd: dict, key: str, n: int) -> None:
    sd[f"{key}.weight"] = torch.ones(n)
    sd[f"{key}.bias"] = torch.zeros(n)


def fork_state_dict(
    groups: Mapping[str, tuple[int, int]], seed: int = 0, **sizes: int
) -> dict[str, torch.Tensor]:
    """A model.pth state dict with exactly the key names and shapes of SPEC.md's layout."""
    s = {**FORK_SIZES, **sizes}
    e_o, e_a, e_r = s["observation_emb_dim"], s["action_emb_dim"], s["reward_emb_dim"]
    h, heads, mlp = e_o + e_a + e_r, s["transformer_heads"], s["intermediate_size"]
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    for name, (obs, act) in groups.items():
        for kind, n_in, emb in (("obs", obs, e_o), ("acs", act, e_a)):
            base = f"encoder.{kind}_encoders.{name}.layers"
            _linear(sd, f"{base}.0", n_in, emb, g)
            _norm(sd, f"{base}.2", emb)
            _linear(sd, f"{base}.3", emb, emb, g)
            _norm(sd, f"{base}.5", emb)
        _linear(sd, f"encoder.rews_encoders.{name}.layers.0", 1, e_r, g)
        for i in (0, 2, 4):
            _linear(sd, f"head.acs_decoders.{name}.layers.{i}", h, h, g)
        _linear(sd, f"head.acs_decoders.{name}.layers.6", h, act, g)
    sd["encoder.prev_acs_padding"] = torch.randn(1, e_a, generator=g) * 0.02
    sd["encoder.prev_rew_padding"] = torch.randn(1, e_r, generator=g) * 0.02
    for i in range(s["transformer_depth"]):
        b = f"transformer.blocks.{i}"
        _norm(sd, f"{b}.norm1", h)
        _norm(sd, f"{b}.norm2", h)
        _linear(sd, f"{b}.attention.in_proj", h, 3 * h, g)  # packed q, k, v
        _linear(sd, f"{b}.attention.out_proj", h, h, g)
        _norm(sd, f"{b}.attention.q_norm", h // heads)
        _norm(sd, f"{b}.attention.k_norm", h // heads)
        _linear(sd, f"{b}.mlp.fc", h, mlp, g)
        _linear(sd, f"{b}.mlp.proj", mlp, h, g)
    _norm(sd, "transformer.ln_f", h)
    return sd


def task_entry(group: str, obs: int, act: int, seed: int = 0) -> dict[str, Any]:
    """One metadata.json task entry in the reference format."""
    rng = np.random.default_rng(seed)
    return {
        "group_name": group,
        "observation_shape": {"proprio": [obs]},
        "action_dim": act,
        "action_type": "continuous",
        "reward_scale": 1.0,
        "obs_mean": rng.normal(size=obs).round(4).tolist(),
        "obs_std": (0.5 + rng.random(obs)).round(4).tolist(),
        "acs_mean": [0.0] * act,
        "acs_std": [1.0] * act,
    }


def write_fork_checkpoint(
    path: Path,
    state_dict: Mapping[str, torch.Tensor] | None = None,
    metadata: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Path:
    """`path` (an NNNN_epoch dir) with the three files written by hand: the fork's defaults are
    random fork-size weights, one 33/12 group for Go1/Go2/A1, and the fork's config.json."""
    path.mkdir(parents=True, exist_ok=True)
    sd = state_dict if state_dict is not None else fork_state_dict({FORK_GROUP: (33, 12)})
    meta = metadata or {t: task_entry(FORK_GROUP, 33, 12, i) for i, t in enumerate(FORK_TASKS)}
    torch.save(dict(sd), path / "model.pth")
    (path / "metadata.json").write_text(json.dumps(meta))
    (path / "config.json").write_text(json.dumps(config or fork_config()))
    return path


# -- histories -----------------------------------------------------------------------------------
def trajectory(
    steps: int, obs_dim: int = FORK_OBS, act_dim: int = FORK_ACT, episode: int = 1000, seed: int = 0
) -> dict[str, np.ndarray]:
    """A learning history's true data: observations o_0..o_steps (one more than actions: the
    last is the observation after the last action), actions a_t = f(o_t), rewards, step_num."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(steps + 1, obs_dim)).astype(np.float32)
    w = rng.normal(size=(obs_dim, act_dim)).astype(np.float32) / np.sqrt(obs_dim)
    return {
        "obs": obs,
        "action": np.tanh(obs[:-1] @ w).astype(np.float32),
        "reward": rng.normal(size=steps).astype(np.float32) * 0.01,
        "step_num": (np.arange(steps) % episode).astype(np.int32),
    }


def write_fork_history(
    path: Path, data: Mapping[str, np.ndarray], chunk: int = FORK_CHUNK
) -> list[str]:
    """One history file as the fork's writer stores it: chunk groups "start-end" of `chunk`
    steps, each with n actions/rewards/step_nums and n+1 observation rows (the extra final row
    is the observation after the chunk's last action, i.e. the next chunk's first row)."""
    n = len(data["action"])
    names = []
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for start in range(0, n, chunk):
            end = min(start + chunk, n) - 1
            g = f.create_group(f"{start}-{end}")
            g.create_dataset("proprio_observation", data=data["obs"][start : end + 2])
            g.create_dataset("action", data=data["action"][start : end + 1])
            g.create_dataset("reward", data=data["reward"][start : end + 1])
            g.create_dataset("step_num", data=data["step_num"][start : end + 1])
            names.append(f"{start}-{end}")
    return names


def write_fork_task(
    folder: Path,
    histories: int = 2,
    steps: int = 300,
    obs_dim: int = FORK_OBS,
    episode: int = 100,
    chunk: int = FORK_CHUNK,
    seed: int = 0,
) -> list[dict[str, np.ndarray]]:
    """A fork task folder: `trajectories_env_<i>.h5` files + `trajectories_env_0.json`."""
    out = []
    for i in range(histories):
        data = trajectory(steps, obs_dim, episode=episode, seed=seed + i)
        write_fork_history(folder / f"trajectories_env_{i}.h5", data, chunk)
        out.append(data)
    (folder / "trajectories_env_0.json").write_text(
        json.dumps({"env": "Go2-v0", "num_envs": histories, "steps": steps})
    )
    return out


def write_config(path: Path, tasks: Mapping[str, tuple[str, str]]) -> Path:
    """A dataset-config YAML (the seed's format) by hand: task -> (path, group)."""
    lines = []
    for task, (folder, group) in tasks.items():
        lines += [
            f"{task}:",
            '  type: "default"',
            f'  path: "{folder}"',
            f'  group: "{group}"',
            "  reward_scale: 1.0",
            "  episode_sparsity: 1",
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def columns(names: Sequence[str], of: Sequence[str]) -> list[int]:
    return [list(of).index(n) for n in names]
