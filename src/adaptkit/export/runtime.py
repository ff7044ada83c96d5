"""An exported policy file, run as adaptkit's rollout policy (`adaptkit eval --exported FILE`).

This is what a robot's control loop does with the file, driven by the simulator: only the
format's runtime (adaptkit.export.formats: torch for TorchScript, onnxruntime for ONNX) and the
sidecar; nothing of the model's Python code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from adaptkit.errors import AdaptkitError
from adaptkit.evaluate.report import EvalReport, evaluate_policy
from adaptkit.evaluate.settings import EvalSettings
from adaptkit.export.build import SIDECAR_FORMAT, sidecar_path
from adaptkit.export.formats import FORMATS
from adaptkit.export.formats.base import Runner
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
        if runtime not in FORMATS:
            raise AdaptkitError(f"{sidecar_path(self.path)}: field 'runtime' {runtime!r} unknown")
        self.runner: Runner = FORMATS[runtime].runner(self.path, self.meta, threads)
        self._reward = np.zeros(0, np.float32)

    def reset(self, num_envs: int) -> None:
        self.runner.reset(num_envs)
        self._reward = np.zeros(num_envs, np.float32)

    def act(self, obs: np.ndarray, env: Any = None) -> np.ndarray:
        return self.runner.act(obs, self._reward)

    def observe(self, actions: np.ndarray, rewards: np.ndarray, done: np.ndarray) -> None:
        self._reward = np.asarray(rewards, np.float32)
        if np.any(done):
            self.runner.start_episode(done)

    def close(self) -> None:
        self.runner.close()

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
