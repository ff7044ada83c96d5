"""An exported policy file, run as adaptkit's rollout policy (`adaptkit eval --exported FILE`).

This is what a robot's control loop does with the file, driven by the simulator: only the
format's runtime (adaptkit.export.formats: torch for TorchScript, onnxruntime for ONNX) and the
sidecar; nothing of the model's Python code."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from adaptkit.defaults import KVDtype
from adaptkit.errors import AdaptkitError, short_repr
from adaptkit.evaluate.report import EvalReport, evaluate_policy
from adaptkit.evaluate.settings import EvalSettings
from adaptkit.export.build import SIDECAR_FORMAT, SIDECAR_VERSION, sidecar_path
from adaptkit.export.formats import FORMATS
from adaptkit.export.formats.base import Runner
from adaptkit.fileio import file_sha256, missing_cause, os_errors, read_json
from adaptkit.model.config import SIZE_CAPS
from adaptkit.progress import SILENT, Reporter
from adaptkit.robot import MAX_JOINTS, MAX_OBS_DIMS, RobotSpec


def read_sidecar(policy_file: str | Path) -> dict[str, Any]:
    """The sidecar beside `policy_file`, every field a control loop (and this runtime) reads
    checked for its type and range: one line naming the field, never a traceback."""
    path = sidecar_path(policy_file)
    if path.is_dir():
        raise AdaptkitError(f"{path}: the sidecar is a directory, not a JSON file")
    try:
        meta = read_json(path)
    except AdaptkitError:
        if not path.exists():
            raise AdaptkitError(
                f"{path}: sidecar not found (it is written beside the policy)"
            ) from None
        raise
    if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
        raise AdaptkitError(f"{path}: field 'format' must be {SIDECAR_FORMAT!r}")
    check_sidecar(meta, str(path))
    return meta


def _field(meta: dict[str, Any], key: str, where: str) -> Any:
    if key not in meta:
        raise AdaptkitError(f"{where}: field '{key}' is missing")
    return meta[key]


def _int(meta: dict[str, Any], key: str, where: str, low: int, high: int) -> int:
    value = _field(meta, key, where)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise AdaptkitError(
            f"{where}: field '{key}' must be an integer in {low}..{high:,}, got {short_repr(value)}"
        )
    return value


def _names(meta: dict[str, Any], key: str, where: str, n: int) -> list[str]:
    value = _field(meta, key, where)
    if not isinstance(value, list) or len(value) != n or not all(isinstance(v, str) for v in value):
        raise AdaptkitError(f"{where}: field '{key}' must be a list of {n} names")
    return value


def _numbers(value: Any, key: str, where: str, n: int) -> list[float]:
    ok = isinstance(value, list) and len(value) == n
    if not ok or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise AdaptkitError(f"{where}: field '{key}' must be a list of {n} numbers")
    if not all(math.isfinite(v) for v in value):
        raise AdaptkitError(f"{where}: field '{key}' must be finite numbers")
    return [float(v) for v in value]


def _number(value: Any, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AdaptkitError(f"{where}: field '{key}' must be a finite number")
    return float(value)


def check_sidecar(meta: dict[str, Any], where: str) -> None:
    """Types and ranges of the fields adaptkit and a control loop read (`where` names the
    file). The sizes are checked against the file itself by ExportedPolicy."""
    version = meta.get("format_version")
    if version != SIDECAR_VERSION:
        raise AdaptkitError(
            f"{where}: field 'format_version' must be {SIDECAR_VERSION}, got "
            f"{short_repr(version)} (export the policy again with this adaptkit)"
        )
    runtime = _field(meta, "runtime", where)
    if runtime not in FORMATS:
        raise AdaptkitError(
            f"{where}: field 'runtime' must be one of {', '.join(FORMATS)}, got "
            f"{short_repr(runtime)}"
        )
    for key in ("robot", "group", "task", "token_order"):
        if not isinstance(_field(meta, key, where), str):
            raise AdaptkitError(f"{where}: field '{key}' must be a string")
    digest = _field(meta, "policy_sha256", where)
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise AdaptkitError(f"{where}: field 'policy_sha256' must be 64 hex digits")
    obs_dim = _int(meta, "obs_dim", where, 1, MAX_OBS_DIMS)
    act_dim = _int(meta, "act_dim", where, 1, MAX_JOINTS)
    _names(meta, "obs_names", where, obs_dim)
    _names(meta, "joint_order", where, act_dim)
    _numbers(_field(meta, "default_pose", where), "default_pose", where, act_dim)
    _int(meta, "context_len", where, 1, SIZE_CAPS["context_len"])
    action = _field(meta, "action", where)
    if not isinstance(action, dict):
        raise AdaptkitError(f"{where}: field 'action' must be an object")
    for key in ("action_scale", "kp", "kd"):
        _number(_field(action, key, f"{where}: action"), f"action.{key}", where)
    _numbers(_field(action, "clip", f"{where}: action"), "action.clip", where, 2)
    model = _field(meta, "model", where)
    if not isinstance(model, dict):
        raise AdaptkitError(f"{where}: field 'model' must be an object")
    caps = {"layers": "transformer_depth", "heads": "transformer_heads", "head_dim": "hidden_dim"}
    for key, cap in caps.items():
        _int(model, key, f"{where}: model", 1, SIZE_CAPS[cap])


class ExportedPolicy:
    """adaptkit.sim.policy's protocol over an exported file (policy.pt or policy.onnx)."""

    def __init__(self, path: str | Path, name: str | None = None, threads: int = 1) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise AdaptkitError(
                f"--exported: {self.path}: a directory, not a policy file (give the policy.pt "
                "or policy.onnx in it)"
            )
        if not self.path.is_file():
            raise AdaptkitError(f"--exported: {self.path}: {missing_cause(self.path)}")
        self.meta = read_sidecar(self.path)
        side = sidecar_path(self.path)
        with os_errors(self.path, "read the policy"):
            digest = file_sha256(self.path)
        if digest != self.meta["policy_sha256"]:
            raise AdaptkitError(
                f"{side}: records policy_sha256 {self.meta['policy_sha256'][:16]}…, but "
                f"{self.path.name} has {digest[:16]}…: the two come from different exports "
                "(export again into this folder)"
            )
        self.name = name or f"exported ({self.meta['runtime']})"
        self.threads = threads
        self.runner: Runner = FORMATS[self.meta["runtime"]].runner(self.path, self.meta, threads)
        self._check_against_file(side)
        self._reward = np.zeros(0, np.float32)

    def _check_against_file(self, side: Path) -> None:
        """The sizes the sidecar records are the file's own."""
        m = self.meta
        recorded = {
            "obs_dim": m["obs_dim"], "act_dim": m["act_dim"], "context_len": m["context_len"],
            **{f"model.{k}": m["model"][k] for k in ("layers", "heads", "head_dim")},
        }  # fmt: skip
        for key, value in self.runner.sizes().items():
            if recorded[key] != value:
                raise AdaptkitError(
                    f"{side}: field '{key}' is {recorded[key]}, but {self.path.name} has {value}"
                )

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
        """`spec` in the observation layout the policy was exported for (the env's spec); the
        sidecar's robot, joints, pose and action must be this robot's, or the control loop that
        follows the sidecar would drive another robot than the one evaluated."""
        m, side = self.meta, sidecar_path(self.path)
        names = list(m["obs_names"])
        if spec.name != m["robot"]:
            raise AdaptkitError(
                f"--robot: {spec.name!r}, but {self.path} was exported for {m['robot']!r}"
            )
        try:
            fitted = spec.for_obs_dim(len(names))
        except AdaptkitError:
            fitted = spec
        if list(fitted.obs_names) != names:
            raise AdaptkitError(
                f"{side}: field 'obs_names' matches no observation layout of robot {spec.name!r}"
            )
        a = m["action"]
        expected = {
            "joint_order": (m["joint_order"], list(fitted.joint_names)),
            "default_pose": (m["default_pose"], list(fitted.default_joint_angles)),
            "action.action_scale": (a["action_scale"], fitted.action_scale),
            "action.clip": (a["clip"], list(fitted.action_bounds)),
            "action.kp": (a["kp"], fitted.kp),
            "action.kd": (a["kd"], fitted.kd),
        }
        for key, (got, want) in expected.items():
            if not _same(got, want):
                raise AdaptkitError(
                    f"{side}: field '{key}' is {short_repr(got)}, but robot {spec.name!r} has "
                    f"{short_repr(want)}: the sidecar was edited, or the robot's plugin changed "
                    "since the export (export again)"
                )
        return fitted

    def check_settings(self, settings: EvalSettings) -> None:
        """Refuse the evaluation options an exported file cannot honour (its window, group,
        token order and stats are fixed inside it) instead of ignoring them."""
        m = self.meta
        fixed = {
            "--context-len": (settings.context_len, m["context_len"]),
            "--group": (settings.group, m["group"]),
            "--token-order": (settings.token_order, m["token_order"]),
        }
        for flag, (given, own) in fixed.items():
            if given is not None and given != own:
                raise AdaptkitError(
                    f"{flag} {given}: {self.path} has {own} fixed inside it; export the "
                    f"checkpoint again with {flag} {given}"
                )
        if settings.kv_dtype is not KVDtype.AUTO:
            raise AdaptkitError(
                f"--kv-dtype {settings.kv_dtype.value}: {self.path} keeps its KV cache in "
                "float32 inside it; give no --kv-dtype"
            )
        if settings.device not in (None, "cpu"):
            raise AdaptkitError(
                f"--device {settings.device}: {self.path} runs on the CPU (its runtime's "
                "default); give no --device"
            )
        if settings.base is not None:
            raise AdaptkitError(f"--base: {self.path} holds its whole model; give no --base")
        if settings.reset_context:
            raise AdaptkitError(
                f"--reset-context: {self.path} keeps one context for all its envs; run the "
                "checkpoint itself with --reset-context"
            )


def _same(got: Any, want: Any) -> bool:
    """Equal numbers within float32 rounding (the sidecar's JSON), or equal values."""
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want, strict=True))
    if isinstance(want, int | float) and isinstance(got, int | float):
        return math.isclose(float(got), float(want), rel_tol=1e-6, abs_tol=1e-9)
    return bool(got == want)


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
    policy.check_settings(settings)
    return evaluate_policy(
        policy,
        policy.robot_for(robot),
        settings,
        out_dir=out_dir,
        label=policy.name,
        reporter=reporter,
    )
