"""The memory plan (adaptkit.train.memory): a run split into micro-batches (with or without
activation checkpointing) to fit a budget ends with the weights of the unplanned run, the plan
is one line, what the model keeps is measured, and --max-memory is parsed or refused in one
line."""

from __future__ import annotations

import pytest
import torch
from helpers_model import tiny_config
from helpers_train import write_task
from typer.testing import CliRunner

from adaptkit.cli import app
from adaptkit.data.config import DatasetEntry
from adaptkit.data.stats import compute_stats
from adaptkit.data.windows import WindowDataset, make_loader
from adaptkit.errors import AdaptkitError
from adaptkit.model import GroupDims, Vintix, action_loss
from adaptkit.progress import NoteCollector
from adaptkit.train.config import TrainConfig
from adaptkit.train.distributed import DistInfo
from adaptkit.train.loop import Trainer, autocast, seed_everything
from adaptkit.train.memory import parse_memory, plan_memory, probe_activations
from adaptkit.train.run_dir import RunDir

OBS, ACT, T = 6, 3, 24


def _trainer(tmp_path, name: str, **cfg) -> tuple[Trainer, NoteCollector]:
    folder = write_task(tmp_path / "data", OBS, ACT, histories=2, steps=200)
    entry = DatasetEntry("t", "default", folder, "g", 1.0, 1)
    stats = {"t": compute_stats(sorted(folder.glob("*.h5")))}
    seed_everything(0)
    config = tiny_config(context_len=T, **cfg.pop("model", {}))
    model = Vintix(config, {"g": GroupDims(OBS, ACT)})
    ds = WindowDataset([entry], stats, T, stride=4)
    loader = make_loader(ds, 8, shuffle=True, seed=0, drop_last=True)
    tcfg = TrainConfig(epochs=1, lr=1e-3, batch_size=8, max_steps_per_epoch=3, **cfg)
    notes = NoteCollector()
    trainer = Trainer(
        model, loader, tcfg, DistInfo(), RunDir(tmp_path, name), lambda *a: tmp_path, T,
        reporter=notes,
    )  # fmt: skip
    return trainer, notes


def _train(trainer: Trainer) -> dict[str, torch.Tensor]:
    seed_everything(0)
    trainer.fit()
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


@pytest.mark.parametrize("checkpointing", [None, False], ids=["planned", "no-checkpointing"])
def test_split_to_fit_a_budget_gives_the_unplanned_weights(tmp_path, checkpointing):
    whole, notes = _trainer(tmp_path, "whole", max_memory=2**40)
    assert whole.plan.micro_batch == 8 and not whole.plan.checkpointing
    assert "batch 8 in one pass" in notes.notes[0] and "global batch 8" in notes.notes[0]
    ref = _train(whole)
    # a 1 MiB budget fits nothing: the smallest micro-batch, checkpointing on unless forbidden
    split, notes = _trainer(
        tmp_path, "split", max_memory=2**20, activation_checkpointing=checkpointing
    )
    assert split.plan.micro_batch == 1 and split.plan.chunks == 8
    assert split.plan.checkpointing is (checkpointing is None)
    (line,) = [n for n in notes.notes if n.startswith("memory plan")]
    assert "micro-batch 1 × 8 accumulation step(s) (global batch 8, unchanged)" in line
    assert "does not fit" in line and "--max-memory" in line
    got = _train(split)
    assert split.global_batch == whole.global_batch == 8
    for k, v in ref.items():
        # the keys' LayerNorm bias adds one constant to a row's scores: the softmax ignores it,
        # its gradient is zero but for rounding, and AdamW turns that noise into ±1e-5 moves
        atol = 1e-5 if k.endswith("k_norm.bias") else 1e-6
        torch.testing.assert_close(got[k], v, atol=atol, rtol=1e-5, msg=k)
    assert any((got[k] != v).any() for k, v in ref.items() if v.is_floating_point())  # trained


def test_plan_takes_the_largest_micro_batch_that_fits():
    from adaptkit.train.memory import Activations

    acts = Activations(100, 10, 5, 0, 0, depth=4)  # per window: 405 kept, 100 working
    kw = {"trainable": 0, "resident": 1000, "budget_source": "test"}
    # batch 8 whole: 1000 + 8 * 405 + 8 * 100 = 5040
    assert plan_memory(acts, 8, budget=5040, **kw).micro_batch == 8
    p = plan_memory(acts, 8, budget=5039, **kw)
    assert (p.micro_batch, p.checkpointing) == (4, False)
    # checkpointed per window: 4 * 10 + 5 kept + 2 * 100 working = 245: batch 8 = 2960
    p = plan_memory(acts, 8, budget=2010, **kw)
    assert (p.micro_batch, p.checkpointing, p.fits) == (2, False, True)  # 1000 + 2 * 505
    # smaller micro-batches come before recomputing: 1 window without it is 1505
    assert plan_memory(acts, 8, budget=1505, **kw).micro_batch == 1
    p = plan_memory(acts, 8, budget=1300, **kw)
    assert (p.micro_batch, p.checkpointing, p.fits) == (1, True, True)  # 505 > 300 ≥ 245
    assert plan_memory(acts, 8, budget=1300, checkpointing=False, **kw).fits is False


def test_probe_measures_what_the_blocks_keep():
    """Per window the blocks keep more at a longer context, checkpointing keeps only the
    block's input, and the probe leaves the random state as it was."""

    def probe(t: int, dropout: float = 0.0):
        torch.manual_seed(0)
        model = Vintix(tiny_config(context_len=t, attn_dropout=dropout), {"g": GroupDims(5, 2)})
        g = torch.Generator().manual_seed(1)

        def batch(m):
            return {
                "group": "g",
                "obs": torch.randn(m, t, 5, generator=g),
                "prev_action": torch.randn(m, t, 2, generator=g),
                "prev_reward": torch.randn(m, t, generator=g),
                "step_num": torch.zeros(m, t, dtype=torch.long),
                "target": torch.randn(m, t, 2, generator=g),
            }

        state = torch.get_rng_state()
        cpu = torch.device("cpu")
        acts = probe_activations(model, batch, action_loss, cpu, lambda: autocast(cpu, "fp32"))
        assert torch.equal(torch.get_rng_state(), state)
        return acts

    short, long = probe(64), probe(128)
    hidden = tiny_config().hidden_dim
    assert long.per_window_block >= 1.9 * short.per_window_block > 0
    assert short.per_window_block_checkpointed == 64 * hidden * 4  # the fp32 block input
    # with attention dropout the plain kernel keeps [heads, T, T] probabilities per window
    assert probe(64, dropout=0.1).per_window_block > short.per_window_block + 4 * 64 * 64 * 4


def test_max_memory_parsed_or_refused_in_one_line(tmp_path):
    assert parse_memory("4G") == parse_memory("4 GiB") == parse_memory("4gb") == 4 * 2**30
    assert parse_memory("512M") == 512 * 2**20 and parse_memory(None) is None
    for bad in ("lots", "-1G", "0", "1k"):
        with pytest.raises(AdaptkitError, match="--max-memory"):
            parse_memory(bad)
    r = CliRunner().invoke(app, ["pretrain", "x.yaml", "--max-memory", "lots"])
    assert r.exit_code != 0 and "--max-memory: expected a size like 4G" in r.output
    assert "Traceback" not in r.output


def test_resume_keeps_the_given_max_memory():
    run = TrainConfig(max_memory=2**30, lr=1e-3)
    cfg, ignored = TrainConfig(max_memory=2**32, lr=1e-4).resumed(run.to_dict())
    assert cfg.max_memory == 2**32 and cfg.lr == 1e-3  # the machine's, the run's
    assert [i for i in ignored if "max_memory" in i] == []
