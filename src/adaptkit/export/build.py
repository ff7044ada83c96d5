"""Write a standalone policy in one of the export formats (adaptkit.export.formats: TorchScript
`policy.pt`, ONNX `policy.onnx`) and its JSON sidecar (`policy.pt.json` / `policy.onnx.json`)
with what a control loop must know.

The policy is built from the same `ModelPolicy` evaluation steps (group, stats, reward scale,
token order, context window), so the exported actions are the in-simulator ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from adaptkit.ckpt.checkpoint import Checkpoint, load_training_state, resolve_checkpoint
from adaptkit.ckpt.layout import is_adapter
from adaptkit.ckpt.load import load_checkpoint, peek_config
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate.plan import plan_kv_cache
from adaptkit.evaluate.policies import STD_EPS, ModelPolicy
from adaptkit.evaluate.settings import EvalSettings
from adaptkit.export.formats import FORMATS, get_format
from adaptkit.export.inputs import INPUT_BOUND
from adaptkit.export.step import PolicyStep
from adaptkit.fileio import file_set, file_sha256, make_dirs, read_json, sweep_temps, write_json
from adaptkit.progress import SILENT, Reporter
from adaptkit.robot import RobotSpec
from adaptkit.sim.physics import CONTROL_DT
from adaptkit.version import __version__

SIDECAR_FORMAT = "adaptkit-exported-policy"
SIDECAR_VERSION = 2  # 2: policy_sha256, input_bound


@dataclass(frozen=True)
class ExportResult:
    policy_file: Path
    sidecar_file: Path
    sidecar: dict[str, Any]


def sidecar_path(policy_file: str | Path) -> Path:
    """policy.pt → policy.pt.json (one sidecar per file: both formats may share a folder)."""
    p = Path(policy_file)
    return p.with_name(p.name + ".json")


def policy_step(policy: ModelPolicy, in_place: bool = True) -> PolicyStep:
    """The exportable step of `policy` (fp32: exported policies run in fp32 with an fp32 cache)."""
    model = policy.model
    if next(model.parameters()).dtype != torch.float32 or policy.device.type != "cpu":
        raise AdaptkitError("export: the model must be loaded on the CPU in float32")
    cfg = model.config
    stats = policy.res.stats

    def t(key: str) -> torch.Tensor:
        return torch.as_tensor(stats.array(key))

    return PolicyStep(
        model,
        policy.group,
        window=policy.context_len,
        obs_mean=t("obs_mean") if cfg.norm_obs else None,
        obs_div=t("obs_std") + STD_EPS if cfg.norm_obs else None,
        act_mean=t("acs_mean") if cfg.norm_acs else None,
        act_std=t("acs_std") + STD_EPS if cfg.norm_acs else None,
        reward_scale=policy.res.reward_scale,
        in_place=in_place,
    ).eval()


def base_fingerprint(checkpoint: Checkpoint) -> str | None:
    """The fingerprint of the base a fine-tune started from (None for a base itself)."""
    if is_adapter(checkpoint.path):
        from adaptkit.ckpt.adapter import read_adapter

        return read_adapter(checkpoint.path)[0].base.fingerprint
    state = load_training_state(checkpoint.path) or {}
    return state.get("base_fingerprint")


def sidecar(
    policy: ModelPolicy, spec: RobotSpec, fmt: str, checkpoint: Checkpoint | None
) -> dict[str, Any]:
    """What the robot's control loop must know besides the network."""
    robot = policy.robot or spec
    form = get_format(fmt)
    step = policy_step(policy)
    out: dict[str, Any] = {
        "format": SIDECAR_FORMAT,
        "format_version": SIDECAR_VERSION,
        "runtime": form.name,
        "file": form.file,
        "robot": robot.name,
        "task": policy.res.task,
        "group": policy.group,
        "obs_dim": step.obs_dim,
        "act_dim": step.act_dim,
        "obs_layout": robot.obs_layout or "custom",
        "obs_names": list(robot.obs_names),
        "joint_order": list(robot.joint_names),
        "default_pose": list(robot.default_joint_angles),
        "action": {
            "meaning": "joint position target = default_pose + action_scale · clip(action)",
            "action_scale": robot.action_scale,
            "clip": list(robot.action_bounds),
            "kp": robot.kp,
            "kd": robot.kd,
        },
        "control_rate_hz": round(1.0 / CONTROL_DT, 6),
        "context_len": policy.context_len,
        "token_order": policy.info.get("token_order", policy.model.config.token_order),
        "reward_scale": policy.res.reward_scale,
        "normalised_inside": {
            "obs": bool(policy.model.config.norm_obs),
            "actions": bool(policy.model.config.norm_acs),
        },
        "stats_source": policy.res.stats_source,
        "model": {
            "layers": step.n_layers,
            "heads": step.n_heads,
            "head_dim": step.head_dim,
            "hidden_dim": policy.model.config.hidden_dim,
        },
        "state": form.state,
        # an obs or reward that is NaN/inf or beyond ±input_bound is refused by the file itself
        # (naming its index) before it enters the context; the state stays as it was
        "input_bound": INPUT_BOUND,
        "adaptkit_version": __version__,
    }
    if checkpoint is not None:
        out |= {
            "checkpoint": str(checkpoint.path),
            "fingerprint": checkpoint.fingerprint,
            "base_fingerprint": base_fingerprint(checkpoint),
        }
    return out


def check_export_window(policy: ModelPolicy) -> None:
    """The exported file's KV cache (one robot at the policy's window, fp32) must fit this
    machine's free memory, as an evaluation's must: a window that cannot run is refused here
    rather than by the robot's first step."""
    plan = plan_kv_cache(policy.model.config, 1, policy.context_len, torch.float32, "cpu")
    if not plan.fits:
        fits = plan.largest_context()
        raise AdaptkitError(
            f"--context-len {policy.context_len:,}: the exported policy's KV cache (1 robot × "
            f"{plan.layers} layers × 2 × hidden {plan.hidden} × 4 bytes per token) = "
            f"{plan.bytes / 1e9:.2f} GB does not fit the {plan.budget / 1e9:.2f} GB free for it "
            f"here; the largest that fits: --context-len {fits:,}"
        )


def export_policy(
    policy: ModelPolicy,
    spec: RobotSpec,
    out_dir: str | Path,
    fmt: str = "torchscript",
    checkpoint: Checkpoint | None = None,
) -> ExportResult:
    """Write `policy` as a standalone file in `out_dir` in the format `fmt` (its file: policy.pt,
    policy.onnx) and its sidecar (the file's name + .json), as one set (adaptkit.fileio.file_set):
    a failure or a kill leaves the earlier pair. The sidecar records the file's sha256, so a
    policy beside another export's sidecar is refused on load (adaptkit.export.runtime)."""
    form = get_format(fmt)
    check_export_window(policy)
    out = make_dirs(out_dir, "export folder")
    target = out / form.file
    step = policy_step(policy, in_place=form.in_place)
    meta = sidecar(policy, spec, fmt, checkpoint)
    sweep_temps(out, f".{form.file}.tmp-*")  # what an export before file sets left when killed
    with file_set(out, f"exported policy ({form.file} and its sidecar)") as tmp:
        form.write(step, tmp / form.file)
        meta["policy_sha256"] = file_sha256(tmp / form.file)
        write_json(sidecar_path(tmp / form.file), meta, "export sidecar")
    return ExportResult(target, sidecar_path(target), meta)


def recorded_robot(checkpoint: str | Path) -> str | None:
    """The robot a run was trained for, else None: a fine-tune's config.json or adapter config
    records it, an exported file's sidecar names it. A path that is neither an exported file nor
    a checkpoint is its own one-line error (not "records no robot")."""
    path = Path(str(checkpoint))
    if path.is_file() and path.suffix in {Path(f.file).suffix for f in FORMATS.values()}:
        try:
            robot = read_json(sidecar_path(path)).get("robot")
        except (AdaptkitError, AttributeError):
            return None
        return robot if isinstance(robot, str) else None
    resolve_checkpoint(checkpoint)
    try:
        robot = peek_config(checkpoint).extra.get("robot")
        if robot is None and is_adapter(resolve_checkpoint(checkpoint)):
            from adaptkit.ckpt.adapter import read_adapter

            robot = read_adapter(resolve_checkpoint(checkpoint))[0].config.get("robot")
    except AdaptkitError:
        return None
    return robot if isinstance(robot, str) else None


def export_checkpoint(
    checkpoint: str | Path,
    spec: RobotSpec,
    out_dir: str | Path,
    fmt: str = "torchscript",
    settings: EvalSettings = EvalSettings(),
    robots: Sequence[RobotSpec] = (),
    reporter: Reporter = SILENT,
) -> ExportResult:
    """Load a checkpoint (a run, an epoch, an adapter or a Hub reference) as the evaluation
    would for `spec`, on the CPU in float32, and export it (see `export_policy`)."""
    get_format(fmt)  # an unknown format fails before the checkpoint loads
    settings = replace(settings, device="cpu")
    ckpt = load_checkpoint(
        checkpoint, base=settings.base, device="cpu", token_order=settings.token_order
    )
    ckpt.model.float()
    policy = ModelPolicy.from_checkpoint(ckpt, spec, settings, robots=robots, reporter=reporter)
    return export_policy(policy, spec, out_dir, fmt, checkpoint=ckpt)
