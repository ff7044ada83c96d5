"""Optimiser groups and the warm-up + cosine schedule (counted in optimiser steps)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from adaptkit.errors import AdaptkitError
from adaptkit.train.config import TrainConfig
from adaptkit.train.schedule import make_optimizer, make_scheduler, param_groups, warmup_cosine


def test_decay_only_on_linear_weights():
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    model[2].requires_grad_(False)  # frozen params never reach the optimiser
    groups = {g["name"]: g for g in param_groups(model, 0.1)}
    assert [p.shape for p in groups["decay"]["params"]] == [torch.Size([4, 3])]
    assert groups["decay"]["weight_decay"] == 0.1
    assert len(groups["no_decay"]["params"]) == 3 and groups["no_decay"]["weight_decay"] == 0.0
    model.requires_grad_(False)
    with pytest.raises(AdaptkitError, match="frozen"):
        param_groups(model, 0.1)


def test_warmup_then_cosine():
    f = warmup_cosine(total_steps=100, warmup_steps=10)
    assert [round(f(s), 3) for s in (0, 4, 9)] == [round(1 / 11, 3), round(5 / 11, 3), 0.909]
    assert f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5 * (1 + math.cos(math.pi * 45 / 90)))
    assert f(99) < 0.01 and all(f(s) >= f(s + 1) for s in range(10, 99))


def test_scheduler_counts_optimiser_steps():
    model = nn.Linear(2, 2)
    opt = make_optimizer(model, lr=1.0, betas=(0.9, 0.99), weight_decay=0.0)
    sched = make_scheduler(opt, total_steps=20, warmup_ratio=0.25)
    lrs = []
    for _ in range(20):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert max(lrs) == pytest.approx(1.0) and lrs.index(max(lrs)) == 5


def test_train_config_validation():
    with pytest.raises(AdaptkitError, match="precision"):
        TrainConfig(precision="fp16")
    with pytest.raises(AdaptkitError, match="batch_size"):
        TrainConfig(batch_size=0)
    cfg = TrainConfig.for_finetune(epochs=3)
    assert cfg.lr == 1e-3 and TrainConfig.from_dict(cfg.to_dict()) == cfg  # only a new group
    assert TrainConfig.for_finetune("none").lr == 1e-4  # pretrained weights train: the seed's
    assert TrainConfig.for_finetune("none", lr=5e-5).lr == 5e-5


def test_model_small_yaml_is_the_default():
    from pathlib import Path

    from adaptkit.ckpt.config_file import read_model_config
    from adaptkit.model import ModelConfig

    path = Path(__file__).parents[1] / "configs" / "model_small.yaml"
    assert read_model_config(path).model_dict() == ModelConfig().model_dict()


def test_auto_precision_is_bf16_only_where_the_device_has_it(monkeypatch):
    from adaptkit.train import loop

    cpu = torch.device("cpu")
    assert TrainConfig.for_finetune().precision == "auto"  # the fine-tune's default
    assert loop.resolve_precision("fp32", cpu) == "fp32"
    assert loop.resolve_precision("bf16", cpu) == "bf16"  # asked for: honoured, even emulated
    monkeypatch.setattr(loop, "native_bf16", lambda device: True)
    assert loop.resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(loop, "native_bf16", lambda device: False)
    assert loop.resolve_precision("auto", cpu) == "fp32"
    monkeypatch.undo()
    # the real probe answers without raising, and agrees with itself
    assert loop.resolve_precision("auto", cpu) == ("bf16" if loop.native_bf16(cpu) else "fp32")
