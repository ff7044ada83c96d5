"""An exported policy file, run as adaptkit's rollout policy (`adaptkit eval --exported FILE`).

This is what a robot's control loop does with the file, driven by the simulator: only torch
(TorchScript) or onnxruntime (ONNX) and the sidecar; nothing of the model's Python code."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from adaptkit.errors import AdaptkitError
from adaptkit.evaluate.report import EvalReport, evaluate_policy
from adaptkit.evaluate.settings import EvalSettings
from adaptkit.export.build import SIDECAR_FORMAT, sidecar_path
from adaptkit.progress import SILENT, Reporter
from adaptkit.robot import RobotSpec


def read_sidecar(policy_file: str | Path) -> dict[str, Any]:
    path = sidecar_path(policy_file)
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise AdaptkitError(
            f"{path}: sidecar not found (it is written beside the policy)"
        ) from None
    except (OSError, ValueError) as exc:
        raise AdaptkitError(f"{path}: not readable JSON ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
        raise AdaptkitError(f"{path}: field 'format' must be {SIDECAR_FORMAT!r}")
    return meta


class _TorchScriptRunner:
    def __init__(self, path: Path) -> None:
        import torch

        self.torch = torch
        try:
            with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript
                warnings.simplefilter("ignore", DeprecationWarning)
                self.module = torch.jit.load(str(path), map_location="cpu").eval()
        except (RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AdaptkitError(f"{path}: not a loadable TorchScript policy ({first})") from None

    def reset(self, n: int) -> None:
        self.module.reset(n)

    def act(self, obs: np.ndarray, reward: np.ndarray) -> np.ndarray:
        t = self.torch
        out = self.module.act(
            t.as_tensor(obs, dtype=t.float32), t.as_tensor(reward, dtype=t.float32)
        )
        return out.numpy()

    def start_episode(self, done: np.ndarray) -> None:
        self.module.start_episode(self.torch.as_tensor(done, dtype=self.torch.bool))


class _OnnxRunner:
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


class ExportedPolicy:
    """adaptkit.sim.policy's protocol over an exported file (policy.pt or policy.onnx)."""

    def __init__(self, path: str | Path, name: str | None = None, threads: int = 1) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise AdaptkitError(f"--exported: {self.path}: no such file")
        self.meta = read_sidecar(self.path)
        self.name = name or f"exported ({self.meta['runtime']})"
        self.threads = threads
        runtime = self.meta["runtime"]
        if runtime == "torchscript":
            self.runner: Any = _TorchScriptRunner(self.path)
        elif runtime == "onnx":
            self.runner = _OnnxRunner(self.path, self.meta, threads)
        else:
            raise AdaptkitError(f"{sidecar_path(self.path)}: field 'runtime' {runtime!r} unknown")
        self._reward = np.zeros(0, np.float32)
        self._saved_threads: int | None = None

    def reset(self, num_envs: int) -> None:
        if self.meta["runtime"] == "torchscript" and self._saved_threads is None:
            import torch

            self._saved_threads = torch.get_num_threads()
            torch.set_num_threads(self.threads)
        self.runner.reset(num_envs)
        self._reward = np.zeros(num_envs, np.float32)

    def act(self, obs: np.ndarray, env: Any = None) -> np.ndarray:
        return self.runner.act(obs, self._reward)

    def observe(self, actions: np.ndarray, rewards: np.ndarray, done: np.ndarray) -> None:
        self._reward = np.asarray(rewards, np.float32)
        if np.any(done):
            self.runner.start_episode(done)

    def close(self) -> None:
        if self._saved_threads is not None:
            import torch

            torch.set_num_threads(self._saved_threads)
            self._saved_threads = None

    def describe(self) -> dict[str, Any]:
        m = self.meta
        return {
            "policy": "exported",
            "file": str(self.path),
            "runtime": m["runtime"],
            "group": m.get("group"),
            "mode": "exported",
            "obs_layout": m.get("obs_layout"),
            "stats_source": f"inside the exported policy ({m.get('stats_source')})",
            "context_len": m.get("context_len"),
            "token_order": m.get("token_order"),
            "token_order_source": "the sidecar",
            "checkpoint": m.get("checkpoint"),
        }

    def robot_for(self, spec: RobotSpec) -> RobotSpec:
        """`spec` in the observation layout the policy was exported for (the env's spec)."""
        names = list(self.meta.get("obs_names", []))
        if spec.name != self.meta.get("robot"):
            raise AdaptkitError(
                f"--robot: {spec.name!r}, but {self.path} was exported for "
                f"{self.meta.get('robot')!r}"
            )
        try:
            fitted = spec.for_obs_dim(len(names))
        except AdaptkitError:
            fitted = spec
        if list(fitted.obs_names) != names:
            raise AdaptkitError(
                f"{sidecar_path(self.path)}: field 'obs_names' matches no observation layout of "
                f"robot {spec.name!r}"
            )
        return fitted


def evaluate_exported(
    path: str | Path,
    robot: RobotSpec,
    settings: EvalSettings = EvalSettings(),
    out_dir: str | Path | None = None,
    label: str | None = None,
    reporter: Reporter = SILENT,
) -> EvalReport:
    """Roll out an exported policy file in the simulator, as `evaluate` does a checkpoint."""
    policy = ExportedPolicy(path, name=label, threads=settings.threads or 1)
    return evaluate_policy(
        policy,
        policy.robot_for(robot),
        settings,
        out_dir=out_dir,
        label=policy.name,
        reporter=reporter,
    )
