"""What both studies share: the results folder's plan.json check, the two ends of the
normalised score (references), the arithmetic of a training budget and a cell's window shape,
and the statistics their reports print (mean ± 95 % CI, spread, gain)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adaptkit.adapt.modes import MODES
from adaptkit.data.windows import count_windows
from adaptkit.errors import AdaptkitError
from adaptkit.fileio import write_json


# -- the results folder ------------------------------------------------------------------------
def check_plan_file(out: Path, plan: dict[str, Any], data_key: dict[str, Any]) -> None:
    """OUT/plan.json: written on the first run; a rerun must agree on what the results depend
    on (`data_key`), else a one-line error names the settings that differ."""
    path = out / "plan.json"
    now = json.loads(json.dumps(data_key))
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise AdaptkitError(f"{path}: unreadable ({exc}); use another --out") from None
        was = old.get("data_key", {}) if isinstance(old, dict) else {}
        differ = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
        if differ:
            raise AdaptkitError(
                f"{path}: this results folder was made with other settings ({', '.join(differ)}); "
                "use another --out, or the preset it was made with"
            )
    write_json(path, {"plan": plan, "data_key": now}, "study plan")


# -- references and budgets -------------------------------------------------------------------
def cell_shape(lengths: Sequence[int], context: int, batch: int) -> tuple[int, int]:
    """The context and window stride for a data subset: the model's context when the shortest
    history holds two of it, else half the shortest history; the stride a quarter of the
    context, made smaller until the data give at least one batch."""
    shortest = min(lengths)
    ctx = context if shortest > 2 * context else max(2, shortest // 2)
    stride = max(1, ctx // 4)
    while stride > 1 and count_windows(lengths, ctx, stride) < batch:
        stride = max(1, stride // 2)
    return ctx, stride


def budget_epochs(n_windows: int, batch: int, budget: int) -> tuple[int, int]:
    """(epochs, steps per epoch) giving ≈ `budget` optimiser steps over `n_windows` windows."""
    per_epoch = n_windows // batch
    if per_epoch < 1:
        raise AdaptkitError(f"study: {n_windows} windows make no batch of {batch}")
    epochs = math.ceil(budget / per_epoch)
    return epochs, math.ceil(budget / epochs)


# -- statistics ------------------------------------------------------------------------------
# two-sided 95 % Student t quantiles t(0.975, df), df = 1..30 (beyond: the normal's 1.96)
T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
WIN_MARGIN = 0.2  # a base "wins" when it beats scratch by this much normalised score


def is_scratch(mode: str) -> bool:
    """A cell of this mode trained without a base (the same-budget comparison every base mode
    is held against); a mode no longer in the table counts as one with a base."""
    return mode in MODES and MODES[mode].scratch


def mean_ci(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and the half-width of its 95 % confidence interval (t-distribution over the seeds;
    None with fewer than two values)."""
    xs = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not xs:
        return None, None
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, None
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    t = T95[len(xs) - 2] if len(xs) - 1 <= len(T95) else 1.96
    return m, t * sd / math.sqrt(len(xs))


def fmt_ci(mean: float | None, ci: float | None = None, signed: bool = False) -> str:
    """A mean and its 95 % half-width for a report table ("—" when there is no mean)."""
    if mean is None:
        return "—"
    return f"{mean:{'+' if signed else ''}.2f}" + (f" ± {ci:.2f}" if ci is not None else "")


def gain(per_episode: Sequence[float | None]) -> float | None:
    """Episode 3 minus episode 1 of a curve (the in-context gain); None when either is missing."""
    if len(per_episode) < 3 or per_episode[0] is None or per_episode[2] is None:
        return None
    return per_episode[2] - per_episode[0]


def spread(xs: Sequence[float]) -> dict[str, float] | None:
    """Mean, sd, min, max and count of the finite values (None: none)."""
    xs = [float(x) for x in xs if x is not None and math.isfinite(x)]
    if not xs:
        return None
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / max(1, len(xs) - 1))
    return {"mean": m, "sd": sd, "min": min(xs), "max": max(xs), "n": len(xs)}
