"""One cell's training in its adaptation mode, for the same budget as every other cell: the
shape of its windows and epochs from the data, then pretraining for a mode without a base
(`scratch`) or a fine-tune of the base in the mode (adaptkit.adapt.modes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adaptkit.adapt.modes import START_WARM, Mode
from adaptkit.ckpt.checkpoint import read_checkpoint_meta
from adaptkit.ckpt.layout import latest_checkpoint
from adaptkit.data.windows import count_windows
from adaptkit.defaults import SaveFormat
from adaptkit.plugins import Registry
from adaptkit.robot import RobotSpec
from adaptkit.study.common import budget_epochs, cell_shape
from adaptkit.study.plan import Cell, StudyPlan
from adaptkit.train import FinetuneJob, RunResult, TrainConfig, finetune, pretrain


def train_cell(
    plan: StudyPlan,
    cell: Cell,
    mode: Mode,
    spec: RobotSpec,
    base: Path,
    cfg: Path,
    lengths: list[int],
    *,
    runs: Path,
    data: Path,
    registry: Registry,
    context: int | None = None,
) -> tuple[RunResult, dict[str, Any]]:
    """Train `cell` into runs/<cell id> on the data subset `cfg` (its histories' `lengths`),
    from `base` unless the mode has none, at `context` (None: the plan's model context);
    returns the run result and the cell's training facts."""
    p = plan
    ctx, stride = cell_shape(lengths, context or p.context_len(), p.batch_size)
    n_win = count_windows(lengths, ctx, stride)
    epochs, per_epoch = budget_epochs(n_win, p.batch_size, p.budget_steps)
    train = TrainConfig(
        epochs=epochs,
        max_steps_per_epoch=per_epoch,
        lr=p.lr,
        batch_size=p.batch_size,
        precision=p.recipe.precision,
        seed=cell.seed,
        save_initial=False,
        save_every=epochs,
        context_len=ctx,
        trajectory_sparsity=stride,
    )
    if mode.scratch:  # no base: the base's model size on the subset alone
        result = pretrain(
            [cfg], data, cell.id, runs, p.model_with(context), train, registry=registry, keep=1
        )
    else:
        warm = None
        if mode.start == START_WARM:  # from the group of the robot's kin, if the base has it
            own = registry.robot(spec.name).group
            warm = own if own != spec.group and own in read_checkpoint_meta(base).groups else "auto"
        job = FinetuneJob(
            robot=spec,
            pretrained_path=latest_checkpoint(base),
            dataset_config_paths=(cfg,),
            data_dir=data,
            name=cell.id,
            save_dir=runs,
            mode=mode.name,
            train=train,
            save=SaveFormat.FULL,
            keep=1,
            warm_start=warm,
            lora_rank=p.lora_rank if mode.lora_rank is not None else None,  # the plan's rank
        )
        result = finetune(job)
    rows = result.trainable.get("rows", [])
    facts = {
        "data_steps": int(sum(lengths)),
        "context_len": ctx,
        "stride": stride,
        "windows": n_win,
        "epochs": epochs,
        "steps": result.steps,
        "final_loss": result.final_loss,
        "trainable_params": next((r["trainable"] for r in rows if r["module"] == "total"), None),
    }
    return result, facts
