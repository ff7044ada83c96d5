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
        guard_inputs(tmp)


# A graph cannot raise, but a node can fail: each guard gathers from a table that is empty
# exactly when its input holds a NaN/inf or a value beyond the bound, at the first such index,
# so onnxruntime refuses the run with the node's name (the refusal's wording) and the index
# (`idx=...`, flat: row × width + column) before any state is computed; the state is the
# caller's, so it stays what it was.
GUARDED = ("obs", "reward")


def _guard_nodes(name: str) -> tuple[list[Any], list[Any]]:
    from onnx import TensorProto, helper, numpy_helper

    from adaptkit.export.inputs import INPUT_BOUND, refusal

    p = f"guard_{name}_"
    message = refusal(f"{name}[idx]", "nan, inf or out of range")
    consts = {
        "bound": np.array(INPUT_BOUND, np.float32), "flat": np.array([-1], np.int64),
        "one": np.array([1], np.int64), "zero": np.array([0], np.int64),
        "table": np.array([1.0], np.float32),
    }  # fmt: skip
    inits = [numpy_helper.from_array(v, p + k) for k, v in consts.items()]
    n = helper.make_node
    nodes = [
        n("Abs", [name], [p + "abs"]),
        n("LessOrEqual", [p + "abs", p + "bound"], [p + "ok"]),  # False for NaN too
        n("Not", [p + "ok"], [p + "bad"]),
        n("Cast", [p + "bad"], [p + "badi"], to=TensorProto.INT64),
        n("Reshape", [p + "badi", p + "flat"], [p + "badv"]),
        n("Concat", [p + "badv", p + "zero"], [p + "padded"], axis=0),  # a scalar input too
        n("ArgMax", [p + "padded"], [p + "first"], axis=0, keepdims=1),
        n("ReduceMax", [p + "padded"], [p + "any"], keepdims=1),
        n("Sub", [p + "one", p + "any"], [p + "size"]),
        n("Slice", [p + "table", p + "zero", p + "size"], [p + "left"]),
        n("Gather", [p + "left", p + "first"], [p + "pass"], axis=0, name=message),
        n("Squeeze", [p + "pass", p + "zero"], [p + "unit"]),
        n("Mul", [name, p + "unit"], [p + "checked"]),  # the graph reads the checked input
    ]
    return nodes, inits


def guard_inputs(path: Path) -> None:
    """Put the input guards in front of the ONNX graph at `path` (rewritten in place)."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    new_nodes, new_inits = [], []
    for name in GUARDED:
        for node in graph.node:
            node.input[:] = [f"guard_{name}_checked" if i == name else i for i in node.input]
        nodes, inits = _guard_nodes(name)
        new_nodes += nodes
        new_inits += inits
    nodes = [*new_nodes, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(new_inits)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


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
        opts.log_severity_level = 4  # a refused run is raised here, not logged to stderr too
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise AdaptkitError(
                f"{path}: not a loadable ONNX policy ({type(exc).__name__})"
            ) from None
        self.path = path
        self.model = meta["model"]
        self.act_dim = int(meta["act_dim"])
        self.window = int(meta["context_len"])
        self.state: dict[str, np.ndarray] = {}

    def sizes(self) -> dict[str, int]:
        """obs/act dims, window and model sizes from the graph's input shapes."""
        shapes = {i.name: i.shape for i in self.session.get_inputs()}
        try:
            obs, act, cache = shapes["obs"], shapes["prev_action"], shapes["k_cache"]
            dims = {
                "obs_dim": obs[1], "act_dim": act[1], "context_len": cache[3],
                "model.layers": cache[0], "model.heads": cache[2], "model.head_dim": cache[4],
            }  # fmt: skip
        except (KeyError, IndexError):
            dims = {}
        if len(dims) < 6 or not all(isinstance(v, int) for v in dims.values()):
            raise AdaptkitError(
                f"{self.path}: not an adaptkit ONNX policy (inputs {', '.join(shapes)})"
            )
        return dims

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
        try:
            action, *state = self.session.run(None, feeds | self.state)
        except Exception as exc:  # onnxruntime's own types; a guard's refusal among them
            from adaptkit.export.inputs import check_input

            for name in GUARDED:
                check_input(name, feeds[name])  # the guard's refusal, worded as in-process
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise AdaptkitError(f"{self.path}: onnxruntime refused the step ({first})") from None
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
