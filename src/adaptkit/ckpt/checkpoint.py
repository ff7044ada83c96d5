"""Checkpoints in the Vintix layout (`NNNN_epoch/` with model.pth, metadata.json, config.json,
state.pth): which dir a path means, strict memory-mapped loading with readable reports, atomic
saving, tensor fingerprints. The layout and file names are adaptkit.ckpt.layout's; an
`NNNN_epoch` dir may instead be an adapter, which adaptkit.ckpt.adapter reads; adaptkit.ckpt.load
is the front door that loads either. What the JSON files mean is adaptkit.meta's (metadata.json)
and adaptkit.ckpt.config_file's (config.json) job."""

from __future__ import annotations

import hashlib
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adaptkit.ckpt.config_file import TokenOrder, checkpoint_config
from adaptkit.ckpt.hub import resolve_model_path
from adaptkit.ckpt.layout import (
    ADAPTER_CONFIG_FILE,
    ADAPTER_FILES,
    ADAPTER_WEIGHTS_FILE,
    CONFIG_FILE,
    METADATA_FILE,
    MODEL_FILE,
    PROVENANCE_FILE,
    REQUIRED_FILES,
    RESTORE_HINT,
    STATE_FILE,
    is_adapter,
    latest_checkpoint,
    read_record,
)
from adaptkit.ckpt.shipped import is_shipped_name, resolve_shipped
from adaptkit.errors import AdaptkitError
from adaptkit.fileio import atomic_dir, missing_cause, to_json_text, torch_save_to
from adaptkit.meta import CheckpointMeta
from adaptkit.model import GroupDims, ModelConfig, Vintix, unwrap
from adaptkit.model.lora import lora_groups

_PARALLEL_HASH_BYTES = 64 << 20  # hash on several threads from this many bytes of weights


def resolve_checkpoint(path: Path | str) -> Path:
    """An `NNNN_epoch` dir (or its model.pth), an adapter dir, or a run dir → the dir to read.

    A Hugging Face Hub reference (`hf://org/name[@rev][/sub]`, or a bare `org/name` that is no
    local path) resolves to its snapshot in the local Hub cache first (adaptkit.ckpt.hub)."""
    path = resolve_shipped(path) if is_shipped_name(path) else resolve_model_path(path)
    if path.is_file() and path.name == MODEL_FILE:
        path = path.parent
    if not path.exists():
        raise AdaptkitError(f"checkpoint {path}: {missing_cause(path)}")
    if (path / MODEL_FILE).exists():
        missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
        if missing:
            raise AdaptkitError(f"checkpoint {path}: missing {', '.join(missing)}")
        return path
    if (path / ADAPTER_CONFIG_FILE).exists() or (path / ADAPTER_WEIGHTS_FILE).exists():
        missing = [f for f in ADAPTER_FILES if not (path / f).is_file()]
        if missing:
            raise AdaptkitError(f"adapter {path}: missing {', '.join(missing)}")
        return path
    latest = latest_checkpoint(path)
    if latest is None:
        raise AdaptkitError(
            f"checkpoint {path}: expected a NNNN_epoch dir with {', '.join(REQUIRED_FILES)} "
            f"(or an adapter: {', '.join(ADAPTER_FILES)}), or a run dir holding such dirs"
        )
    return latest


# -- fingerprints ------------------------------------------------------------------------------
def tensor_hash(t: torch.Tensor) -> str:
    """sha256 of dtype, shape and raw bytes (hashed in place: no copy of the tensor's bytes)."""
    t = t.detach().to("cpu").contiguous()
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def fingerprint(
    obj: nn.Module | Mapping[str, torch.Tensor], keys: Iterable[str] | None = None
) -> dict[str, str]:
    """name → sha256 per tensor of a model's (or a plain) state dict, optionally a subset.

    Tensors are hashed on a few threads (hashlib releases the GIL on large buffers): for a
    memory-mapped state dict this pass is the one read of the weights from disk."""
    sd = unwrap(obj).state_dict() if isinstance(obj, nn.Module) else obj
    names = list(sd) if keys is None else list(keys)
    missing = [k for k in names if k not in sd]
    if missing:
        raise AdaptkitError(f"fingerprint: no tensor named {', '.join(missing[:5])}")
    total = sum(sd[k].numel() * sd[k].element_size() for k in names)
    if total < _PARALLEL_HASH_BYTES:
        return {k: tensor_hash(sd[k]) for k in names}
    # biggest first, so no thread is left with one large tensor at the end
    order = sorted(names, key=lambda k: -sd[k].numel() * sd[k].element_size())
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        hashes = dict(zip(order, pool.map(lambda k: tensor_hash(sd[k]), order), strict=True))
    return {k: hashes[k] for k in names}


def digest(hashes: Mapping[str, str]) -> str:
    """One hash for a set of tensor hashes (order independent)."""
    h = hashlib.sha256()
    for k in sorted(hashes):
        h.update(f"{k}:{hashes[k]}\n".encode())
    return h.hexdigest()


def _torch_load(path: Path, where: str, unreadable: str, mmap: bool = False) -> Any:
    """torch.load(weights_only) with missing and corrupt files as one-line AdaptkitErrors."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except FileNotFoundError:
        raise AdaptkitError(f"{where}: file not found") from None
    except Exception as exc:  # truncated, not a torch file, unsafe pickle
        raise AdaptkitError(f"{where}: {unreadable} ({type(exc).__name__})") from None


def load_state_dict_file(path: Path, mmap: bool = True) -> dict[str, torch.Tensor]:
    """A plain state dict of tensors (model.pth), loaded with weights_only.

    Memory-mapped by default: tensors read their bytes from the file's pages when touched, and
    those pages are private (copy-on-write): writing into a tensor never changes the file."""
    sd = _torch_load(path, str(path), "not a loadable weights file", mmap=mmap)
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise AdaptkitError(f"{path}: expected a plain state dict of tensors")
    return sd


def check_recorded_fingerprint(ckpt_dir: Path, sd: Mapping[str, torch.Tensor]) -> None:
    """When the run folder's provenance.json records the fingerprint of this epoch (a shipped
    base: "shipped_from", "fingerprint"), the weights must have it: a damaged or edited copy
    is refused, not used (and recorded by an adapter as its base). Cheap: one hash of the
    weights (the default shipped base is 2.6 MB)."""
    record = read_record(ckpt_dir.parent)
    if not record or record.get("shipped_from") != ckpt_dir.name:
        return
    want = record.get("fingerprint")
    if not isinstance(want, str):
        raise AdaptkitError(
            f"{ckpt_dir.parent / PROVENANCE_FILE}: field 'fingerprint' is missing; {RESTORE_HINT}"
        )
    got = digest(fingerprint(sd))
    if got != want:
        raise AdaptkitError(
            f"{ckpt_dir / MODEL_FILE}: its weights' fingerprint {got[:16]} differs from the "
            f"{want[:16]} that {ckpt_dir.parent / PROVENANCE_FILE} records (a damaged or edited "
            f"copy); {RESTORE_HINT}"
        )


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
    assign: bool = False,
) -> None:
    """Strict load with a readable report instead of torch's raw dump, then check that every
    parameter really holds the file's values (nothing re-initialised afterwards).

    `assign`: the model's tensors become the given ones (no copy: a model built on the 'meta'
    device takes memory-mapped weights as they are); they are converted only where the file's
    dtype differs from the model's."""
    live = model.state_dict()
    expected = {k: v.shape for k, v in live.items()}
    report = state_dict_report(expected, {k: v.shape for k, v in sd.items()})
    if report:
        raise AdaptkitError(f"{source} does not match {expected_from}: " + " | ".join(report))
    if assign:
        sd = {k: v if v.dtype == live[k].dtype else v.to(live[k].dtype) for k, v in sd.items()}
    model.load_state_dict(sd, strict=True, assign=assign)
    live = model.state_dict()
    if assign:  # the very tensors given: identity is the check, and costs no read
        changed = [k for k, v in sd.items() if live[k].data_ptr() != v.data_ptr()]
    else:
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
    base_path: Path | None = None  # the base checkpoint an adapter was loaded onto
    # the order the model uses and why (None: built in memory, the config's own)
    token_order: TokenOrder | None = None

    @property
    def groups(self) -> dict[str, GroupDims]:
        return self.model.groups

    @property
    def state_path(self) -> Path | None:
        p = self.path / STATE_FILE
        return p if p.is_file() else None


def config_json(model: nn.Module, config: Mapping[str, Any]) -> dict[str, Any]:
    """config.json of a checkpoint: `config`'s keys, then the model's own keys (which win, but a
    run's context_len is kept: a run may train with a different context than its base).
    token_order is always written, the default too: a checkpoint must never leave its order to
    be guessed (the released loader ignores unknown keys)."""
    cfg = {**config, **unwrap(model).config.model_dict()}
    if "context_len" in config:
        cfg["context_len"] = config["context_len"]
    return cfg


def save_checkpoint(
    path: Path | str,
    model: nn.Module,
    meta: CheckpointMeta,
    config: Mapping[str, Any],
    state: Mapping[str, Any] | None = None,
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write model.pth, metadata.json, config.json (+ state.pth) atomically: everything goes into a
    temp dir beside `path`, fsync'ed and renamed into place when complete.

    `config`: config.json's non-model keys (training keys); the model's own keys are added.
    `extra(tmp_dir)` may add files (e.g. the adapter of a frozen fine-tune) before the rename."""
    path = Path(path)
    model = unwrap(model)
    meta.check_model_groups(model.groups, f"{path / METADATA_FILE} (saving)")
    cfg = config_json(model, config)
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_dir(path, "checkpoint") as tmp:
        # torch.save through Python file objects: a full disk is an OSError naming its cause
        with open(tmp / MODEL_FILE, "wb") as fh:
            torch_save_to(weights, fh, path / MODEL_FILE, "checkpoint")
        (tmp / METADATA_FILE).write_text(to_json_text(meta.to_json()))
        (tmp / CONFIG_FILE).write_text(to_json_text(cfg))
        if state is not None:
            with open(tmp / STATE_FILE, "wb") as fh:
                torch_save_to(dict(state), fh, path / STATE_FILE, "checkpoint")
        if extra is not None:
            extra(tmp)
    return path


def build_model(config: ModelConfig, meta: CheckpointMeta) -> Vintix:
    """The untrained model a checkpoint's config and metadata describe: its groups, and the LoRA
    modules its metadata records (created before any weights load)."""
    model = Vintix(config, meta.groups)
    for group, spec in lora_groups(meta).items():
        model.add_lora(group, spec.rank, spec.alpha)
    return model


def load_full_checkpoint(
    path: Path | str,
    *,
    device: torch.device | str = "cpu",
    config_overrides: Mapping[str, Any] | None = None,
    hash_weights: bool = True,
    token_order: str | None = None,
) -> Checkpoint:
    """Load a full `NNNN_epoch` dir (or the latest one in a run dir), strictly and verified.
    (adaptkit.ckpt.load.load_checkpoint is the front door that also takes adapters.)

    Lean at any size: model.pth is memory-mapped, the model is built on the 'meta' device and
    takes the mapped tensors as its own (no second copy, no random init to overwrite), and the
    fingerprint is hashed from those tensors: one read of the weights in all. Peak memory is
    about the weights' size (bench/bench_release.py measures it). `hash_weights=False` skips
    the hashing, so nothing of the weights is read (`fingerprint` is then "").

    The token order is `token_order` if given, else config.json's record, else inferred from
    config.json (adaptkit.ckpt.config_file.config_token_order: the quadruped fork's checkpoints do
    not record theirs; the weights cannot tell, both orders have the same shapes). An inferred order
    is `Checkpoint.token_order.settled == False`: adaptkit.ckpt.token_order can check it on data.
    `config_overrides` patch config.json's keys."""
    ckpt_dir = resolve_checkpoint(path)
    if is_adapter(ckpt_dir):
        raise AdaptkitError(
            f"checkpoint {ckpt_dir}: an adapter, not a full checkpoint (load it on its base)"
        )
    config, order = checkpoint_config(ckpt_dir / CONFIG_FILE, config_overrides, token_order)
    meta = CheckpointMeta.read(ckpt_dir / METADATA_FILE)
    sd = load_state_dict_file(ckpt_dir / MODEL_FILE)
    check_recorded_fingerprint(ckpt_dir, sd)
    with torch.device("meta"):
        model = build_model(config, meta)
    load_weights(model, sd, str(ckpt_dir / MODEL_FILE), assign=True)
    model.transformer.reset_slopes()
    hashes = fingerprint(model) if hash_weights else {}
    model.to(device)
    return Checkpoint(
        model, meta, config, ckpt_dir, hashes, digest(hashes) if hashes else "", token_order=order
    )


def read_checkpoint_meta(path: Path | str) -> CheckpointMeta:
    """The metadata of a full checkpoint (an NNNN_epoch folder, or a run folder's newest complete
    one), without loading its weights."""
    return CheckpointMeta.read(resolve_checkpoint(path) / METADATA_FILE)


def load_training_state(path: Path | str) -> dict[str, Any] | None:
    """state.pth of a checkpoint (optimiser/scheduler), or None when absent."""
    p = resolve_checkpoint(path) / STATE_FILE
    if not p.is_file():
        return None
    return _torch_load(p, str(p), "unreadable training state")
