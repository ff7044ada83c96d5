"""Checkpoints in the Vintix layout (`NNNN_epoch/` with model.pth, metadata.json, config.json,
state.pth), task metadata, tensor fingerprints and adapter files (one new group + its metadata)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adaptkit.errors import AdaptkitError
from adaptkit.model import GroupDims, ModelConfig, Vintix
from adaptkit.robot import RobotSpec

MODEL_FILE, METADATA_FILE, CONFIG_FILE, STATE_FILE = (
    "model.pth",
    "metadata.json",
    "config.json",
    "state.pth",
)
REQUIRED_FILES = (MODEL_FILE, METADATA_FILE, CONFIG_FILE)
REQUIRED_TASK_FIELDS = (
    "group_name",
    "observation_shape",
    "action_dim",
    "action_type",
    "reward_scale",
    "obs_mean",
    "obs_std",
    "acs_mean",
    "acs_std",
)
ADAPTER_FORMAT, ADAPTER_VERSION = "adaptkit-adapter", 1
_EPOCH_RE = re.compile(r"^(\d+)_epoch$")


# -- layout ------------------------------------------------------------------------------------
def epoch_dir(save_dir: Path | str, name: str, epoch: int) -> Path:
    """`{save_dir}/{name}/{epoch:04d}_epoch`, the reference layout."""
    return Path(save_dir) / name / f"{epoch:04d}_epoch"


def is_complete(path: Path) -> bool:
    return path.is_dir() and all((path / f).is_file() for f in REQUIRED_FILES)


def latest_checkpoint(run_dir: Path | str) -> Path | None:
    """The complete `NNNN_epoch` dir with the highest epoch in `run_dir`, or None."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return None
    found = [
        (int(m.group(1)), p)
        for p in run_dir.iterdir()
        if (m := _EPOCH_RE.match(p.name)) and is_complete(p)
    ]
    return max(found)[1] if found else None


def resolve_checkpoint(path: Path | str) -> Path:
    """An `NNNN_epoch` dir (or its model.pth), or a run dir → the checkpoint dir to read."""
    path = Path(path)
    if path.is_file() and path.name == MODEL_FILE:
        path = path.parent
    if not path.exists():
        raise AdaptkitError(f"checkpoint {path}: no such file or directory")
    if (path / MODEL_FILE).exists():
        missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
        if missing:
            raise AdaptkitError(f"checkpoint {path}: missing {', '.join(missing)}")
        return path
    latest = latest_checkpoint(path)
    if latest is None:
        raise AdaptkitError(
            f"checkpoint {path}: expected a NNNN_epoch dir with {', '.join(REQUIRED_FILES)}, "
            "or a run dir holding such dirs"
        )
    return latest


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DDP (`.module`) and torch.compile (`._orig_mod`) wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module
        else:
            return model


# -- metadata ----------------------------------------------------------------------------------
def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _check_vector(source: str, task: str, name: str, values: Any, length: int) -> None:
    if not isinstance(values, list | tuple) or not all(_is_number(v) for v in values):
        raise AdaptkitError(
            f"{source}: task {task!r} field '{name}' must be a list of finite numbers"
        )
    if len(values) != length:
        raise AdaptkitError(
            f"{source}: task {task!r} field '{name}' has {len(values)} values, expected {length}"
        )


def _obs_dim(source: str, task: str, entry: Mapping[str, Any]) -> int:
    shape = entry["observation_shape"]
    proprio = shape.get("proprio") if isinstance(shape, dict) else None
    if (
        not isinstance(proprio, list | tuple)
        or len(proprio) != 1
        or not isinstance(proprio[0], int)
        or proprio[0] < 1
    ):
        raise AdaptkitError(
            f"{source}: task {task!r} field 'observation_shape' must be {{\"proprio\": [d]}}, "
            f"got {shape!r}"
        )
    return proprio[0]


def validate_task(source: str, task: str, entry: Any) -> GroupDims:
    """Check one task entry is complete and self-consistent; return its dims."""
    if not isinstance(entry, dict):
        raise AdaptkitError(
            f"{source}: task {task!r} must be an object, got {type(entry).__name__}"
        )
    missing = [f for f in REQUIRED_TASK_FIELDS if f not in entry]
    if missing:
        raise AdaptkitError(
            f"{source}: task {task!r} is incomplete, missing {', '.join(missing)} (the reference "
            "add_task writes such entries; add the robot with adaptkit to get a complete one)"
        )
    if not isinstance(entry["group_name"], str) or not entry["group_name"]:
        raise AdaptkitError(
            f"{source}: task {task!r} field 'group_name' must be a non-empty string"
        )
    obs_dim = _obs_dim(source, task, entry)
    act_dim = entry["action_dim"]
    if not isinstance(act_dim, int) or isinstance(act_dim, bool) or act_dim < 1:
        raise AdaptkitError(
            f"{source}: task {task!r} field 'action_dim' must be a positive integer"
        )
    if entry["action_type"] != "continuous":
        raise AdaptkitError(
            f"{source}: task {task!r} field 'action_type' must be 'continuous', "
            f"got {entry['action_type']!r}"
        )
    if not _is_number(entry["reward_scale"]):
        raise AdaptkitError(f"{source}: task {task!r} field 'reward_scale' must be a finite number")
    for name, n in (
        ("obs_mean", obs_dim),
        ("obs_std", obs_dim),
        ("acs_mean", act_dim),
        ("acs_std", act_dim),
    ):
        _check_vector(source, task, name, entry[name], n)
    if any(v < 0 for v in (*entry["obs_std"], *entry["acs_std"])):
        raise AdaptkitError(f"{source}: task {task!r} has a negative std")
    return GroupDims(obs_dim, act_dim)


def validate_metadata(meta: Any, source: str = METADATA_FILE) -> dict[str, GroupDims]:
    """Validate every task; return group → dims (from each group's first task)."""
    if not isinstance(meta, dict) or not meta:
        raise AdaptkitError(
            f"{source}: expected an object of task → metadata with at least one task"
        )
    groups: dict[str, GroupDims] = {}
    first: dict[str, str] = {}
    for task, entry in meta.items():
        dims = validate_task(source, task, entry)
        g = entry["group_name"]
        if g not in groups:
            groups[g], first[g] = dims, task
        elif groups[g] != dims:
            raise AdaptkitError(
                f"{source}: task {task!r} has obs/act dims {dims.obs_dim}/{dims.act_dim} but group "
                f"{g!r} (from task {first[g]!r}) has {groups[g].obs_dim}/{groups[g].act_dim}"
            )
    return groups


def groups_from_metadata(meta: Mapping[str, Any]) -> dict[str, GroupDims]:
    return validate_metadata(dict(meta))


def group_tasks(meta: Mapping[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for task, entry in meta.items():
        out[entry["group_name"]].append(task)
    return dict(out)


def task_metadata(spec: RobotSpec, stats: Mapping[str, Any]) -> dict[str, Any]:
    """A complete metadata entry for the robot's task (`stats`: one stats.json entry)."""
    entry: dict[str, Any] = {
        "group_name": spec.group,
        "observation_shape": {"proprio": [spec.obs_dim]},
        "action_dim": spec.action_dim,
        "action_type": "continuous",
        "reward_scale": float(spec.reward_scale),
        "episode_sparsity": spec.episode_sparsity,
        "robot": spec.name,
    }
    for name in ("obs_mean", "obs_std", "acs_mean", "acs_std"):
        if name not in stats:
            raise AdaptkitError(f"stats for task {spec.task!r}: missing field '{name}'")
        entry[name] = [float(v) for v in _to_list(stats[name])]
    validate_task(f"stats for robot {spec.name!r}", spec.task, entry)
    return entry


def _to_list(x: Any) -> Any:
    return x.tolist() if hasattr(x, "tolist") else list(x)


def _json_default(x: Any) -> Any:
    if hasattr(x, "tolist"):  # numpy arrays/scalars, tensors
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise AdaptkitError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise AdaptkitError(f"{path}: invalid JSON ({exc})") from None


# -- fingerprints ------------------------------------------------------------------------------
def tensor_hash(t: torch.Tensor) -> str:
    """sha256 of dtype, shape and raw bytes."""
    t = t.detach().to("cpu").contiguous()
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def fingerprint(
    obj: nn.Module | Mapping[str, torch.Tensor], keys: Iterable[str] | None = None
) -> dict[str, str]:
    """name → sha256 per tensor of a model's (or a plain) state dict, optionally a subset."""
    sd = unwrap(obj).state_dict() if isinstance(obj, nn.Module) else obj
    names = list(sd) if keys is None else list(keys)
    missing = [k for k in names if k not in sd]
    if missing:
        raise AdaptkitError(f"fingerprint: no tensor named {', '.join(missing[:5])}")
    return {k: tensor_hash(sd[k]) for k in names}


def digest(hashes: Mapping[str, str]) -> str:
    """One hash for a set of tensor hashes (order independent)."""
    h = hashlib.sha256()
    for k in sorted(hashes):
        h.update(f"{k}:{hashes[k]}\n".encode())
    return h.hexdigest()


def _torch_load(path: Path, where: str, unreadable: str) -> Any:
    """torch.load(weights_only) with missing and corrupt files as one-line AdaptkitErrors."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise AdaptkitError(f"{where}: file not found") from None
    except Exception as exc:  # truncated, not a torch file, unsafe pickle
        raise AdaptkitError(f"{where}: {unreadable} ({type(exc).__name__})") from None


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    sd = _torch_load(path, str(path), "not a loadable weights file")
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise AdaptkitError(f"{path}: expected a plain state dict of tensors")
    return sd


def checkpoint_fingerprint(path: Path | str) -> str:
    """One hash of a checkpoint's model.pth tensors (content-based, not file bytes)."""
    return digest(fingerprint(_load_state_dict(resolve_checkpoint(path) / MODEL_FILE)))


# -- readable state-dict reports ---------------------------------------------------------------
_GROUP_KEY = re.compile(r"^(encoder\.(obs|acs|rews)_encoders|head\.acs_decoders)\.([^.]+)\.(.*)$")
_PART = {"obs": "obs encoder", "acs": "action encoder", "rews": "reward encoder"}


def _owner(key: str) -> tuple[str, str, str]:
    """(owner, module, rest): e.g. ("group 'go2'", "obs encoder", "layers.0.weight")."""
    m = _GROUP_KEY.match(key)
    if m:
        module = _PART[m.group(2)] if m.group(2) else "decoder"
        return f"group {m.group(3)!r}", module, m.group(4)
    if key.startswith("transformer.blocks."):
        i, _, rest = key[len("transformer.blocks.") :].partition(".")
        return "transformer", f"block {i}", rest
    if key.startswith("transformer."):
        return "transformer", key.split(".")[1], key
    if key.startswith("encoder.prev_"):
        return "shared paddings", key.split(".")[1], ""
    return "other", key, ""


def state_dict_report(
    expected: Mapping[str, torch.Size], found: Mapping[str, torch.Size], limit: int = 3
) -> list[str]:
    """Differences between expected and found key→shape maps, summarised per group/module."""
    items: list[str] = []
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    for label, keys, other, why in (
        (
            "missing",
            missing,
            found,
            "expected by config.json/metadata.json, absent from the weights",
        ),
        (
            "unexpected",
            unexpected,
            expected,
            "in the weights, but config.json/metadata.json lack it",
        ),
    ):
        by_owner: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for k in keys:
            owner, module, _ = _owner(k)
            by_owner[owner][module] += 1
        other_owners = {_owner(k)[0] for k in other}
        for owner, modules in by_owner.items():
            n = sum(modules.values())
            if owner not in other_owners:  # e.g. a group only one side knows about
                items.append(f"{label} {owner} (all {n} tensors) — {why}")
                continue
            parts = ", ".join(f"{m} ({c})" for m, c in list(modules.items())[:limit])
            more = f", +{len(modules) - limit} more modules" if len(modules) > limit else ""
            items.append(f"{label} in {owner}: {parts}{more} — {why}")
    shapes: dict[str, list[str]] = defaultdict(list)
    for k in expected:
        if k in found and tuple(expected[k]) != tuple(found[k]):
            owner, module, rest = _owner(k)
            shapes[owner].append(
                f"{module} {rest}: expected {list(expected[k])}, found {list(found[k])}".strip()
            )
    for owner, diffs in shapes.items():
        more = f" (+{len(diffs) - limit} more)" if len(diffs) > limit else ""
        items.append(f"shape mismatch in {owner}: " + "; ".join(diffs[:limit]) + more)
    return items


def load_weights(
    model: nn.Module,
    sd: Mapping[str, torch.Tensor],
    source: str,
    expected_from: str = "config.json + metadata.json",
) -> None:
    """Strict load with a readable report instead of torch's raw dump, then check that every
    parameter really holds the file's values (nothing re-initialised afterwards)."""
    expected = {k: v.shape for k, v in model.state_dict().items()}
    report = state_dict_report(expected, {k: v.shape for k, v in sd.items()})
    if report:
        raise AdaptkitError(f"{source} does not match {expected_from}: " + " | ".join(report))
    model.load_state_dict(sd, strict=True)
    live = model.state_dict()
    changed = [
        k for k, v in sd.items() if not torch.equal(live[k].cpu(), v.to(live[k].dtype).cpu())
    ]
    if changed:
        raise AdaptkitError(f"{source}: weights differ after loading: {', '.join(changed[:5])}")


# -- save / load -------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """A loaded checkpoint. `fingerprint`: digest of the weights as loaded (base + adapters)."""

    model: Vintix
    metadata: dict[str, Any]
    config: ModelConfig
    raw_config: dict[str, Any]
    path: Path
    tensor_hashes: dict[str, str]
    fingerprint: str
    adapters: list[Path] = field(default_factory=list)

    @property
    def groups(self) -> dict[str, GroupDims]:
        return self.model.groups

    @property
    def state_path(self) -> Path | None:
        p = self.path / STATE_FILE
        return p if p.is_file() else None


def check_metadata_matches_model(meta: Mapping[str, Any], model: Vintix, source: str) -> None:
    groups = validate_metadata(dict(meta), source)
    for g, dims in groups.items():
        if g not in model.groups:
            raise AdaptkitError(f"{source}: group {g!r} has tasks but the model has no such group")
        if model.groups[g] != dims:
            m = model.groups[g]
            raise AdaptkitError(
                f"{source}: group {g!r} declares obs/act {dims.obs_dim}/{dims.act_dim}, "
                f"the model's modules have {m.obs_dim}/{m.act_dim}"
            )
    orphans = [g for g in model.groups if g not in groups]
    if orphans:
        raise AdaptkitError(
            f"{source}: model groups {orphans} have no task entry (a new group needs a complete "
            "metadata entry — use adaptkit.surgery.add_group)"
        )


def save_checkpoint(
    path: Path | str,
    model: nn.Module,
    metadata: Mapping[str, Any],
    config: Mapping[str, Any],
    state: Mapping[str, Any] | None = None,
) -> Path:
    """Write model.pth, metadata.json, config.json (+ state.pth) atomically: everything goes into a
    temp dir beside `path`, renamed into place when complete."""
    path = Path(path)
    model = unwrap(model)
    check_metadata_matches_model(metadata, model, f"{path / METADATA_FILE} (saving)")
    cfg = {**config, **model.config.model_dict()}
    if "context_len" in config:  # a run may train with a different context than the base
        cfg["context_len"] = config["context_len"]
    if (
        cfg["token_order"] == "obs,act,rew"
    ):  # the released default: keep config.json reference-clean
        del cfg["token_order"]
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    tmp = path.parent / f".{path.name}.tmp-{tag}"
    tmp.mkdir()
    try:
        weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save(weights, tmp / MODEL_FILE)
        (tmp / METADATA_FILE).write_text(
            json.dumps(dict(metadata), indent=2, default=_json_default)
        )
        (tmp / CONFIG_FILE).write_text(json.dumps(cfg, indent=2, default=_json_default))
        if state is not None:
            torch.save(dict(state), tmp / STATE_FILE)
        if path.exists():
            old = path.parent / f".{path.name}.old-{tag}"
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load_checkpoint(
    path: Path | str,
    *,
    device: torch.device | str = "cpu",
    config_overrides: Mapping[str, Any] | None = None,
) -> Checkpoint:
    """Load an `NNNN_epoch` dir (or the latest one in a run dir), strictly and verified.

    `config_overrides` patch config.json's keys, e.g. {"token_order": "act,rew,obs"} for a
    checkpoint of the quadruped fork, whose config.json does not record its token order (the
    weights cannot tell: both orders have the same shapes)."""
    ckpt_dir = resolve_checkpoint(path)
    raw_config = _read_json(ckpt_dir / CONFIG_FILE)
    if not isinstance(raw_config, dict):
        raise AdaptkitError(f"{ckpt_dir / CONFIG_FILE}: expected a JSON object")
    raw_config.update(config_overrides or {})
    config = _model_config(raw_config, ckpt_dir / CONFIG_FILE)
    metadata = _read_json(ckpt_dir / METADATA_FILE)
    groups = validate_metadata(metadata, str(ckpt_dir / METADATA_FILE))
    sd = _load_state_dict(ckpt_dir / MODEL_FILE)
    model = Vintix(config, groups)
    load_weights(model, sd, str(ckpt_dir / MODEL_FILE))
    model.set_task2group({t: e["group_name"] for t, e in metadata.items()})
    hashes = fingerprint(sd)
    model.to(device)
    return Checkpoint(model, metadata, config, raw_config, ckpt_dir, hashes, digest(hashes))


def _model_config(raw: Any, source: Path) -> ModelConfig:
    try:
        return ModelConfig.from_dict(raw)
    except AdaptkitError as exc:
        raise AdaptkitError(f"{source}: {exc}") from None
    except TypeError as exc:
        raise AdaptkitError(f"{source}: {exc}") from None


def load_training_state(path: Path | str) -> dict[str, Any] | None:
    """state.pth of a checkpoint (optimiser/scheduler), or None when absent."""
    p = resolve_checkpoint(path) / STATE_FILE
    if not p.is_file():
        return None
    return _torch_load(p, str(p), "unreadable training state")


# -- adapters ----------------------------------------------------------------------------------
def save_adapter(
    path: Path | str,
    model: nn.Module,
    group: str,
    metadata: Mapping[str, Any],
    base_fingerprint: str,
) -> Path:
    """One small file: the group's tensors, its tasks' metadata, the base's fingerprint."""
    path = Path(path)
    model = unwrap(model)
    if group not in model.groups:
        raise AdaptkitError(
            f"adapter: model has no group {group!r} (groups: {sorted(model.groups)})"
        )
    tasks = {t: dict(e) for t, e in metadata.items() if e.get("group_name") == group}
    if not tasks:
        raise AdaptkitError(f"adapter: metadata has no task in group {group!r}")
    dims = validate_metadata(tasks, f"adapter metadata for group {group!r}")[group]
    if dims != model.groups[group]:
        raise AdaptkitError(
            f"adapter: metadata dims {dims} disagree with the model's {model.groups[group]}"
        )
    prefixes = Vintix.group_prefixes(group)
    tensors = {
        k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k.startswith(prefixes)
    }
    payload = {
        "format": ADAPTER_FORMAT,
        "version": ADAPTER_VERSION,
        "group": group,
        "obs_dim": dims.obs_dim,
        "act_dim": dims.act_dim,
        "tensors": tensors,
        "metadata": json.loads(json.dumps(tasks, default=_json_default)),
        "base_fingerprint": base_fingerprint,
        "model_config": model.config.model_dict(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_adapter(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    raw = _torch_load(path, f"adapter {path}", "not a loadable adapter")
    if not isinstance(raw, dict) or raw.get("format") != ADAPTER_FORMAT:
        raise AdaptkitError(f"adapter {path}: not an adaptkit adapter file")
    if raw.get("version") != ADAPTER_VERSION:
        raise AdaptkitError(
            f"adapter {path}: format version {raw.get('version')!r}, expected {ADAPTER_VERSION}"
        )
    kinds = {"group": str, "tensors": dict, "metadata": dict, "base_fingerprint": str}
    bad = [k for k, kind in kinds.items() if not isinstance(raw.get(k), kind)]
    if bad:
        raise AdaptkitError(f"adapter {path}: missing or malformed {', '.join(bad)}")
    return raw


def load_adapter(base: Checkpoint | Path | str, adapter_path: Path | str) -> Checkpoint:
    """Base + adapter group. Refused when the base's weights are not the ones the adapter was
    trained on. A Checkpoint passed as `base` is extended in place (its model gains the group)."""
    if not isinstance(base, Checkpoint):
        base = load_checkpoint(base)
    adapter_path = Path(adapter_path)
    raw = read_adapter(adapter_path)
    group = raw["group"]
    model = base.model
    current = fingerprint(model)  # the live weights, not the hashes taken at load time
    if group in model.groups:
        raise AdaptkitError(f"adapter {adapter_path}: base {base.path} already has group {group!r}")
    if digest(current) != raw["base_fingerprint"]:
        raise AdaptkitError(
            f"adapter {adapter_path}: trained on base {raw['base_fingerprint'][:16]}, but "
            f"{base.path} has fingerprint {digest(current)[:16]}; load it with its own base"
        )
    tasks = raw["metadata"]
    dims = validate_metadata(tasks, f"adapter {adapter_path} metadata")[group]
    clash = [t for t in tasks if t in base.metadata]
    if clash:
        raise AdaptkitError(f"adapter {adapter_path}: tasks {clash} already exist in {base.path}")
    model.add_group_modules(group, dims)
    try:
        expected = {
            k: v.shape
            for k, v in model.state_dict().items()
            if k.startswith(Vintix.group_prefixes(group))
        }
        tensors = raw["tensors"]
        report = state_dict_report(expected, {k: v.shape for k, v in tensors.items()})
        if report:
            raise AdaptkitError(f"adapter {adapter_path}: " + " | ".join(report))
        load_weights(
            model, {**model.state_dict(), **tensors}, f"adapter {adapter_path}", "its metadata"
        )
    except BaseException:
        model.remove_group(group)
        raise
    metadata = {**base.metadata, **tasks}
    model.set_task2group({t: e["group_name"] for t, e in metadata.items()})
    hashes = {**current, **fingerprint(tensors)}
    return Checkpoint(
        model,
        metadata,
        base.config,
        base.raw_config,
        base.path,
        hashes,
        digest(hashes),
        [*base.adapters, adapter_path],
    )
