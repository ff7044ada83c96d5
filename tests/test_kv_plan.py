"""The KV cache is planned before the first step: its size, the refusal naming what fits, the
dtype rule, and compare refusing before any rollout."""

from __future__ import annotations

import pytest
import torch
from helpers_model import tiny_checkpoint, tiny_config, tiny_meta, tiny_model

from adaptkit import defaults
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate import EvalSettings, ModelPolicy, compare
from adaptkit.evaluate import plan as plan_mod
from adaptkit.evaluate.plan import kv_dtype, plan_kv_cache
from adaptkit.evaluate.resolve import resolve
from adaptkit.model import GroupDims, ModelConfig


def test_plan_size_and_refusal():
    cfg = ModelConfig.released()  # 20 layers, hidden 1024
    plan = plan_kv_cache(cfg, 100, 8192, torch.bfloat16, "cpu", budget=20 * 10**9)
    assert plan.bytes == 100 * 8192 * 20 * 2 * 1024 * 2  # ≈ 67 GB, the figure
    assert not plan.fits
    assert plan.largest_envs() == 20 * 10**9 // (8192 * 20 * 2 * 1024 * 2)  # 29
    assert plan.largest_context() == 20 * 10**9 // (100 * 20 * 2 * 1024 * 2)  # 2441
    with pytest.raises(AdaptkitError) as err:
        plan.check()
    msg = str(err.value)
    assert "100 envs × context 8192 × 20 layers × 2 × hidden 1024 × 2 bytes" in msg
    assert "--num-envs 29 at context 8192" in msg and "--context-len 2441 with 100 envs" in msg
    fp32 = plan_kv_cache(cfg, 16, 2048, torch.float32, "cpu", budget=10**9)
    with pytest.raises(AdaptkitError, match=r"--kv-dtype bf16 \(half the bytes\)"):
        fp32.check()
    assert plan_kv_cache(cfg, 16, 2048, torch.bfloat16, "cpu", budget=3 * 10**9).check().fits


def test_kv_dtype_rule():
    assert kv_dtype("auto", defaults.LARGE_MODEL_BYTES) == torch.bfloat16
    assert kv_dtype("auto", defaults.LARGE_MODEL_BYTES - 1) == torch.float32
    assert kv_dtype("fp32", 10**12) == torch.float32
    assert kv_dtype("bf16", 1) == torch.bfloat16
    # the released size counts as large: 330M fp32 parameters
    assert plan_mod.weight_bytes(ModelConfig.released()) > defaults.LARGE_MODEL_BYTES


def test_policy_refuses_before_allocating(monkeypatch, registry):
    spec = registry.robot("go1")
    model = tiny_model(groups={"quadruped_locomotion": GroupDims(45, 12)})
    meta = tiny_meta(groups=model.groups, tasks={"go1_walking_ad": "quadruped_locomotion"})
    policy = ModelPolicy(model, resolve(meta, spec), context_len=32)
    monkeypatch.setattr(plan_mod, "available_memory", lambda device: 1000)
    with pytest.raises(AdaptkitError, match="does not fit"):
        policy.reset(8)
    assert policy.cache is None
    monkeypatch.setattr(plan_mod, "available_memory", lambda device: 10**9)
    policy.reset(8)
    assert policy.cache.k[0].dtype == torch.float32  # a small model keeps fp32
    assert policy.describe()["kv_cache_bytes"] == 8 * 32 * 2 * 2 * tiny_config().hidden_dim * 4


def test_compare_refuses_before_any_rollout(monkeypatch, registry, tmp_path):
    ckpt = tiny_checkpoint(tmp_path)
    monkeypatch.setattr(plan_mod, "available_memory", lambda device: 1000)
    with pytest.raises(AdaptkitError, match="model 'ft': KV cache of 4 envs"):
        compare(registry.robot("go1"), [("ft", ckpt)], EvalSettings(num_envs=4, episodes=1,
                                                                     device="cpu"),
                out_dir=tmp_path / "out")  # fmt: skip
    assert not (tmp_path / "out").exists()
