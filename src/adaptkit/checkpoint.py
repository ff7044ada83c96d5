"""Checkpoints in the Vintix layout (`NNNN_epoch/` with model.pth, metadata.json, config.json,
state.pth): strict loading with readable reports, atomic saving, tensor fingerprints, and adapter
files (one new group + its metadata). What the JSON files mean is adaptkit.meta's job."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adaptkit.errors import AdaptkitError
from adaptkit.fileio import atomic_dir, to_json_text, torch_save_atomic
from adaptkit.meta import CheckpointMeta, read_config
from adaptkit.model import GroupDims, ModelConfig, Vintix

MODEL_FILE, METADATA_FILE, CONFIG_FILE, STATE_FILE = (
    "model.pth",
    "metadata.json",
    "config.json",
    "state.pth",
)
REQUIRED_FILES = (MODEL_FILE, METADATA_FILE, CONFIG_FILE)
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


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """A plain state dict of tensors (model.pth), loaded with weights_only."""
    sd = _torch_load(path, str(path), "not a loadable weights file")
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise AdaptkitError(f"{path}: expected a plain state dict of tensors")
    return sd


def checkpoint_fingerprint(path: Path | str) -> str:
    """One hash of a checkpoint's model.pth tensors (content-based, not file bytes)."""
    return digest(fingerprint(load_state_dict_file(resolve_checkpoint(path) / MODEL_FILE)))


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
    meta: CheckpointMeta
    config: ModelConfig  # model keys + every other config.json key in `config.extra`
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


def save_checkpoint(
    path: Path | str,
    model: nn.Module,
    meta: CheckpointMeta,
    config: Mapping[str, Any],
    state: Mapping[str, Any] | None = None,
) -> Path:
    """Write model.pth, metadata.json, config.json (+ state.pth) atomically: everything goes into a
    temp dir beside `path`, fsync'ed and renamed into place when complete.

    `config`: config.json's non-model keys (training keys); the model's own keys are added."""
    path = Path(path)
    model = unwrap(model)
    meta.check_model_groups(model.groups, f"{path / METADATA_FILE} (saving)")
    cfg = {**config, **model.config.model_dict()}
    if "context_len" in config:  # a run may train with a different context than the base
        cfg["context_len"] = config["context_len"]
    if cfg["token_order"] == "obs,act,rew":  # the released default: keep config.json clean
        del cfg["token_order"]
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_dir(path, "checkpoint") as tmp:
        # torch.save through Python file objects: a full disk is an OSError naming its cause
        with open(tmp / MODEL_FILE, "wb") as fh:
            torch.save(weights, fh)
        (tmp / METADATA_FILE).write_text(to_json_text(meta.to_json()))
        (tmp / CONFIG_FILE).write_text(to_json_text(cfg))
        if state is not None:
            with open(tmp / STATE_FILE, "wb") as fh:
                torch.save(dict(state), fh)
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
    config = read_config(ckpt_dir / CONFIG_FILE, config_overrides)
    meta = CheckpointMeta.read(ckpt_dir / METADATA_FILE)
    sd = load_state_dict_file(ckpt_dir / MODEL_FILE)
    model = Vintix(config, meta.groups)
    load_weights(model, sd, str(ckpt_dir / MODEL_FILE))
    hashes = fingerprint(sd)
    model.to(device)
    return Checkpoint(model, meta, config, ckpt_dir, hashes, digest(hashes))


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
    meta: CheckpointMeta,
    base_fingerprint: str,
) -> Path:
    """One small file: the group's tensors, its tasks' metadata, the base's fingerprint."""
    path = Path(path)
    model = unwrap(model)
    if group not in model.groups:
        raise AdaptkitError(
            f"adapter: model has no group {group!r} (groups: {sorted(model.groups)})"
        )
    tasks = meta.subset(group)
    if not len(tasks):
        raise AdaptkitError(f"adapter: metadata has no task in group {group!r}")
    if tasks.groups[group] != model.groups[group]:
        raise AdaptkitError(
            f"adapter: metadata dims {tasks.groups[group]} disagree with the model's "
            f"{model.groups[group]}"
        )
    prefixes = Vintix.group_prefixes(group)
    tensors = {
        k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k.startswith(prefixes)
    }
    dims = model.groups[group]
    payload = {
        "format": ADAPTER_FORMAT,
        "version": ADAPTER_VERSION,
        "group": group,
        "obs_dim": dims.obs_dim,
        "act_dim": dims.act_dim,
        "tensors": tensors,
        "metadata": tasks.to_json(),
        "base_fingerprint": base_fingerprint,
        "model_config": model.config.model_dict(),
    }
    torch_save_atomic(payload, path, "adapter")
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
    tasks = CheckpointMeta.parse(raw["metadata"], f"adapter {adapter_path} metadata")
    if set(tasks.groups) != {group}:
        raise AdaptkitError(
            f"adapter {adapter_path}: its metadata has groups {sorted(tasks.groups)}, "
            f"expected only {group!r}"
        )
    clash = [t for t in tasks.tasks if t in base.meta]
    if clash:
        raise AdaptkitError(f"adapter {adapter_path}: tasks {clash} already exist in {base.path}")
    model.add_group_modules(group, tasks.groups[group])
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
    meta = base.meta.copy()
    for t in tasks.tasks.values():
        meta.add(t)
    hashes = {**current, **fingerprint(tensors)}
    return Checkpoint(
        model, meta, base.config, base.path, hashes, digest(hashes), [*base.adapters, adapter_path]
    )
