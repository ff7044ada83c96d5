"""Settle the token order of a checkpoint that does not record it, on data of its own tasks.

A Vintix token concatenates the observation, previous-action and previous-reward embeddings; the
released model orders them obs,act,rew, the quadruped fork act,rew,obs, and the weights of the
two have the same shapes. adaptkit.meta infers an unrecorded order from config.json's keys; with
learning histories of the checkpoint's own tasks at hand, the stronger test is the model itself:
its prediction loss on a few windows under both orders. A trained model predicts its own tasks'
actions far better in the order it was trained with; when neither order is clearly better (an
untrained model) the config-based order stands and the note says the check was inconclusive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch

from adaptkit.ckpt.checkpoint import Checkpoint
from adaptkit.ckpt.config_file import TokenOrder
from adaptkit.data.config import DatasetEntry
from adaptkit.data.history import list_history_files, read_history
from adaptkit.errors import AdaptkitError
from adaptkit.model import action_loss
from adaptkit.model.config import TOKEN_ORDERS
from adaptkit.progress import SILENT, Reporter
from adaptkit.robot import RobotSpec

CHECK_WINDOWS = 8  # windows per task
CHECK_CONTEXT = 128  # timesteps per window (at most the model's context)
CHECK_TASKS = 3  # tasks looked at, at most
DECISIVE_RATIO = 0.8  # the better order's loss must be below 80 % of the other's to decide
OBS_EPS = 1e-6  # the reference's (obs − mean) / (std + 1e-6)


def own_task_data(
    ckpt: Checkpoint,
    data_dir: str | Path | None,
    robots: Iterable[RobotSpec] = (),
    entries: Iterable[DatasetEntry] = (),
) -> dict[str, DatasetEntry]:
    """Learning histories of the checkpoint's own tasks that are at hand: dataset-config
    `entries` naming them, then the data folder (under `data_dir`) of each robot whose task the
    checkpoint has, in the layout of that task's group."""
    found: dict[str, DatasetEntry] = {}
    for e in entries:
        if e.task in ckpt.meta and e.path.is_dir():
            found.setdefault(e.task, e)
    if data_dir is None:
        return found
    for spec in robots:
        task = ckpt.meta.tasks.get(spec.task)
        if task is None or spec.task in found:
            continue
        try:
            spec = spec.for_layout(task.obs_layout) if task.obs_layout else spec
            spec = spec.for_obs_dim(task.dims.obs_dim)
        except AdaptkitError:
            continue  # the robot cannot produce this task's observation
        entry = DatasetEntry.for_robot(spec, data_dir)
        if entry.path.is_dir():
            found[spec.task] = entry
    return found


def _windows(ckpt: Checkpoint, entry: DatasetEntry, context: int) -> dict[str, torch.Tensor] | None:
    """CHECK_WINDOWS evenly spaced windows of the task's first history, normalised with the
    checkpoint's own stats for the task; None when the data does not fit the task."""
    task = ckpt.meta[entry.task]
    try:
        h = read_history(list_history_files(entry.path)[0])
    except AdaptkitError:
        return None
    if (h.obs_dim, h.act_dim) != (task.dims.obs_dim, task.dims.act_dim) or len(h) <= context:
        return None
    starts = np.linspace(0, len(h) - context - 1, CHECK_WINDOWS).astype(np.int64)
    pos = starts[:, None] + np.arange(context + 1)
    mean, std = task.stats.array("obs_mean"), task.stats.array("obs_std")
    obs = (h.obs[pos[:, 1:]] - mean) / (std + np.float32(OBS_EPS))
    act = h.action[pos]
    return {
        "obs": torch.from_numpy(obs),
        "prev_act": torch.from_numpy(act[:, :-1]),
        "prev_rew": torch.from_numpy(h.reward[pos[:, :-1]] * np.float32(task.reward_scale)),
        "step_num": torch.from_numpy(h.step_num[pos[:, 1:]].astype(np.int64)),
        "target": torch.from_numpy(act[:, 1:]),
    }


@torch.no_grad()
def order_losses(ckpt: Checkpoint, data: Mapping[str, DatasetEntry]) -> dict[str, float] | None:
    """Mean prediction loss (MSE, as training) under each token order over a few windows of up
    to CHECK_TASKS tasks; None when no task's data fits. The model's order is restored."""
    model = ckpt.model
    context = min(CHECK_CONTEXT, model.config.context_len)
    batches = []
    for task, entry in list(data.items())[:CHECK_TASKS]:
        w = _windows(ckpt, entry, context)
        if w is not None:
            batches.append((ckpt.meta[task].group, w))
    if not batches:
        return None
    was_training, before = model.training, model.config.token_order
    device = next(model.parameters()).device
    model.eval()  # dropout off (the fork trains with 0.1)
    losses: dict[str, float] = {}
    try:
        for order in TOKEN_ORDERS:
            model.set_token_order(order)
            total = 0.0
            for group, w in batches:
                x = {k: v.to(device) for k, v in w.items()}
                pred = model(group, x["obs"], x["prev_act"], x["prev_rew"], x["step_num"])
                total += float(action_loss(pred, x["target"]))
            losses[order] = total / len(batches)
    finally:
        model.set_token_order(before)
        model.train(was_training)
    return losses


def settle_token_order(
    ckpt: Checkpoint, data: Mapping[str, DatasetEntry], reporter: Reporter = SILENT
) -> TokenOrder:
    """The checkpoint's token order, settled on its own tasks' `data` when it was only inferred
    from config.json; the model is switched to it, and the order and why are reported."""
    current = ckpt.token_order or TokenOrder(ckpt.config.token_order, "the model's config", True)
    if current.settled:
        if not current.reason.startswith("recorded"):
            reporter.note(f"token order {current.describe()}")
        return current
    losses = order_losses(ckpt, data) if data else None
    if losses is None:
        settled = current
        reporter.note(
            f"token order {current.describe()}; no learning histories of the checkpoint's own "
            "tasks at hand to check it on (--token-order to set it)"
        )
    else:
        tasks = ", ".join(list(data)[:CHECK_TASKS])
        shown = ", ".join(f"{o} {v:.4g}" for o, v in losses.items())
        best, other = sorted(losses, key=losses.get)
        if losses[best] < DECISIVE_RATIO * losses[other]:
            settled = TokenOrder(
                best,
                f"not recorded; the checkpoint predicts its own tasks' actions ({tasks}) best in "
                f"this order — loss {shown}",
                True,
            )
        else:
            settled = TokenOrder(
                current.order,
                f"{current.reason}; the loss check on {tasks} was inconclusive ({shown})",
                False,
            )
        reporter.note(f"token order {settled.describe()}")
    ckpt.model.set_token_order(settled.order)
    ckpt.token_order = settled
    return settled
