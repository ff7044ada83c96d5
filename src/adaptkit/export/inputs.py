"""What a policy step takes: finite observations and rewards within the bound no physical signal
crosses, refused (naming the index) before they enter the context.

One bad reading must not poison a robot's policy: a NaN, an inf or a 1e30 that reaches the KV
cache makes every later action NaN until the context is reset. Clipping would hide a broken
sensor (and NaN has no nearest value), so the step is refused and the state stays what it was
before the call; the caller decides (hold the pose, retry the reading). The bound is the
learning-history checker's (adaptkit.data.check.MAX_ABS_VALUE): no history a policy learnt from
holds a larger value. The exported files carry the same check (adaptkit.export.step for
TorchScript, adaptkit.export.formats.onnx for ONNX); this is the numpy one `load_policy` runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adaptkit.data.check import MAX_ABS_VALUE
from adaptkit.errors import AdaptkitError

INPUT_BOUND = MAX_ABS_VALUE
BOUND_TEXT = f"{INPUT_BOUND:g}"  # 1e+06, spelt the same by every runtime's message


# what every runtime's refusal ends with (the TorchScript file carries it as a string)
REFUSED_TAIL = (
    f": refused before it enters the context (a policy takes finite values with |x| <= "
    f"{BOUND_TEXT}); its state is as before this call"
)


def refusal(subject: str, what: str) -> str:
    """The one wording of a refused input: `subject` obs[4], obs[1, 4] or reward; `what` nan,
    inf, -inf or out of range."""
    return f"act: {subject} is {what}{REFUSED_TAIL}"


def subject(name: str, index: Sequence[int]) -> str:
    """obs[4], obs[1, 4], or the name alone for a single number."""
    return f"{name}[{', '.join(str(int(i)) for i in index)}]" if len(index) else name


def describe(value: float) -> str:
    """nan, inf, -inf, or "out of range" for a finite value beyond the bound."""
    return str(float(value)) if not np.isfinite(value) else "out of range"


def check_input(name: str, x: np.ndarray) -> None:
    """Refuse `x` (obs or reward) when any value is NaN/inf or |x| > INPUT_BOUND, naming the
    first such index (row, column for a batch)."""
    bad = ~(np.abs(x) <= INPUT_BOUND)  # one comparison covers NaN too
    if bad.any():
        index = np.argwhere(bad)[0]
        value = float(x[tuple(index)])
        raise AdaptkitError(refusal(subject(name, index), describe(value)))
