"""ONNX: `policy.onnx`, the step with its state as explicit inputs and outputs; writing it needs
the onnx extra (onnx, onnxscript), running it onnxruntime only."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from adaptkit.errors import AdaptkitError
from adaptkit.export.formats.base import ExportFormat
from adaptkit.fileio import atomic_path

INPUTS = ("obs", "reward", "prev_action", "step_index", "position", "k_cache", "v_cache")
OUTPUTS = (
    "action", "next_prev_action", "next_step_index", "next_position", "next_k_cache",
    "next_v_cache",
)  # fmt: skip
OPSET = 18


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._export", "torch.export")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


def write(step: Any, path: Path) -> None:
    try:
        import onnx  # noqa: F401  (the exporter needs it; fail with the extra's name)
        import onnxscript  # noqa: F401
    except ImportError:
        raise AdaptkitError(
            "--format onnx: needs the onnx extra: pip install 'adaptkit[onnx]'"
        ) from None
    import torch  # the table stays torch-free for the CLI's --help

    state = step.initial_state(1)
    args = (torch.zeros(1, step.obs_dim), torch.zeros(1), *state.values())
    batch = torch.export.Dim("batch", min=1, max=4096)
    shapes = {
        "obs": {0: batch},
        "reward": {0: batch},
        "prev_action": {0: batch},
        "step_index": {0: batch},
        "position": None,
        "k_cache": {1: batch},
        "v_cache": {1: batch},
    }
    # the exporter logs and warns about things that do not concern the user (torchvision ops,
    # renamed axes): keep the terminal for adaptkit's own lines
    with atomic_path(path, "ONNX policy") as tmp, _quiet_exporter():
        program = torch.onnx.export(
            step,
            args,
            input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            dynamic_shapes=shapes,
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        program.save(str(tmp), external_data=False)


class Runner:
    """policy.onnx through onnxruntime on the CPU; the state is carried here between steps."""

    def __init__(self, path: Path, meta: dict[str, Any], threads: int) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise AdaptkitError(
                f"{path}: running an ONNX policy needs the onnx extra: pip install 'adaptkit[onnx]'"
            ) from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise AdaptkitError(
                f"{path}: not a loadable ONNX policy ({type(exc).__name__})"
            ) from None
        self.model = meta["model"]
        self.act_dim = int(meta["act_dim"])
        self.window = int(meta["context_len"])
        self.state: dict[str, np.ndarray] = {}

    def reset(self, n: int) -> None:
        m = self.model
        cache = (m["layers"], n, m["heads"], self.window, m["head_dim"])
        self.state = {
            "prev_action": np.zeros((n, self.act_dim), np.float32),
            "step_index": np.zeros(n, np.int64),
            "position": np.zeros((), np.int64),
            "k_cache": np.zeros(cache, np.float32),
            "v_cache": np.zeros(cache, np.float32),
        }

    def act(self, obs: np.ndarray, reward: np.ndarray) -> np.ndarray:
        feeds = {"obs": np.asarray(obs, np.float32), "reward": np.asarray(reward, np.float32)}
        action, *state = self.session.run(None, feeds | self.state)
        self.state = dict(zip(self.state, state, strict=True))
        return action

    def start_episode(self, done: np.ndarray) -> None:
        self.state["step_index"][np.asarray(done, bool)] = 0

    def close(self) -> None:
        pass


FORMAT = ExportFormat(
    name="onnx",
    file="policy.onnx",
    needs="onnxruntime, the onnx extra",
    write=write,
    runner=Runner,
    in_place=False,
    state={
        "inputs": {
            "obs": "[B, obs_dim] float32, raw (normalised inside), in obs_names order",
            "reward": "[B] float32, raw reward of the previous action (ignored at step_index 0)",
            "prev_action": "[B, act_dim] float32 state (zeros at first)",
            "step_index": "[B] int64 state: episode step; set 0 where an episode starts",
            "position": "[] int64 state: tokens seen (0 for a fresh context)",
            "k_cache": "[layers, B, heads, context_len, head_dim] float32 state (zeros at first)",
            "v_cache": "like k_cache",
        },
        "outputs": {
            "action": "[B, act_dim] float32 raw action (what the env takes)",
            "next_*": "the state to pass in at the next step",
        },
    },
)
