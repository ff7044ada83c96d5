"""The normalised score: where a return sits between standing still and the demonstrator."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def normalised_score(ret: float | None, demo: float | None, stand: float | None) -> float | None:
    """(R − R_stand) / (R_demo − R_stand): standing still = 0, the demonstrator = 1.

    None when it is undefined: no return, a non-finite one, or no gap between the references."""
    if ret is None or demo is None or stand is None or not math.isfinite(ret) or demo == stand:
        return None
    return (ret - stand) / (demo - stand)


def score_against(ret: float | None, refs: Mapping[str, Any]) -> float | None:
    """The normalised score of `ret` against a robot's reference rows (`{"demonstrator":
    {"mean_return": …}, "stand": {"mean_return": …}}`); None when one is missing."""
    try:
        demo, stand = refs["demonstrator"]["mean_return"], refs["stand"]["mean_return"]
    except (KeyError, TypeError):
        return None
    return normalised_score(ret, demo, stand)
