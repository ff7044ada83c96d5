"""The front door for model paths: a full checkpoint, or an adapter on its base.

Every command and job that takes a model path loads it here. A full `NNNN_epoch` (or a run dir,
or a Hub reference) is read by adaptkit.ckpt.checkpoint; an adapter dir (adaptkit.ckpt.adapter's
format) loads its base first — `base` if given, else the one its adapter_config.json records,
which may itself be an adapter — then adds the adapter's group after checking the base's
fingerprint.
`merge_adapter` writes base + adapter as one full checkpoint the reference loader reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from adaptkit.ckpt.adapter import AdapterConfig, apply_adapter, read_adapter
from adaptkit.ckpt.checkpoint import (
    Checkpoint,
    load_full_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from adaptkit.ckpt.config_file import parse_config, read_config
from adaptkit.ckpt.layout import (
    ADAPTER_CONFIG_FILE,
    CONFIG_FILE,
    EPOCH_RE,
    METADATA_FILE,
    is_adapter,
    is_complete,
)
from adaptkit.ckpt.shipped import find_by_fingerprint
from adaptkit.errors import AdaptkitError
from adaptkit.fileio import read_json
from adaptkit.meta import CheckpointMeta
from adaptkit.model import ModelConfig


def load_checkpoint(
    path: Path | str,
    *,
    device: torch.device | str = "cpu",
    config_overrides: Mapping[str, Any] | None = None,
    hash_weights: bool = True,
    base: Checkpoint | Path | str | None = None,
    token_order: str | None = None,
) -> Checkpoint:
    """A checkpoint or an adapter, loaded strictly and verified (adaptkit.ckpt.checkpoint's
    `load_full_checkpoint` for the full case: memory-mapped, fingerprinted, token order given,
    recorded or inferred). For an adapter, `config_overrides` and `token_order` apply to its
    base, and `base` (a path or an already loaded Checkpoint, extended in place) overrides the
    base its adapter_config.json records."""
    ckpt_dir = resolve_checkpoint(path)
    if not is_adapter(ckpt_dir):
        return load_full_checkpoint(
            ckpt_dir,
            device=device,
            config_overrides=config_overrides,
            hash_weights=hash_weights,
            token_order=token_order,
        )
    return _on_base(ckpt_dir, base, device, config_overrides, token_order)


def load_adapter(base: Checkpoint | Path | str, adapter_path: Path | str) -> Checkpoint:
    """Base (a loaded Checkpoint, extended in place, or a path) + the adapter files in
    `adapter_path` (also those a full checkpoint of a frozen fine-tune holds beside its weights)."""
    return _on_base(resolve_checkpoint(adapter_path), base)


def _on_base(
    adapter_dir: Path,
    base: Checkpoint | Path | str | None,
    device: torch.device | str = "cpu",
    config_overrides: Mapping[str, Any] | None = None,
    token_order: str | None = None,
) -> Checkpoint:
    if isinstance(base, Checkpoint):
        return apply_adapter(base, adapter_dir)
    cfg, _ = read_adapter(adapter_dir)
    loaded = load_checkpoint(
        base if base is not None else _find_base(cfg, adapter_dir),
        config_overrides=config_overrides,
        token_order=token_order,
    )
    out = apply_adapter(loaded, adapter_dir, fresh_hashes=True)
    out.model.to(device)
    return out


def _find_base(cfg: AdapterConfig, adapter_dir: Path) -> Path | str:
    """The adapter's base: the resolved dir it trained on, then the name it records (a local
    path, a Hub reference, or a shipped base's portable `adaptkit:NAME@FP`), then a base this
    installation ships with the recorded fingerprint (an adapter that named its base by the
    path it had on another machine); one line naming what was tried when none is found."""
    candidates: list[Path | str] = []
    if cfg.base.path is not None and cfg.base.path.exists():
        candidates.append(cfg.base.path)
    candidates.append(cfg.base.name)
    tried = []
    for candidate in candidates:
        try:
            resolve_checkpoint(candidate)
        except AdaptkitError as exc:
            tried.append(str(exc))
            continue
        return candidate
    shipped = find_by_fingerprint(cfg.base.fingerprint)
    if shipped is not None:
        return shipped
    raise AdaptkitError(
        f"adapter {adapter_dir}: its base ({cfg.base.name}, fingerprint "
        f"{cfg.base.fingerprint[:16]}) is not found ({'; '.join(tried)}); pass it with --base"
    )


def peek_config(path: Path | str, base: Path | str | None = None) -> ModelConfig:
    """A checkpoint's (or an adapter's) model config from its JSON alone: no weights read."""
    ckpt_dir = resolve_checkpoint(path)
    if not is_adapter(ckpt_dir):
        return read_config(ckpt_dir / CONFIG_FILE)
    raw = read_json(ckpt_dir / ADAPTER_CONFIG_FILE)
    model = raw.get("model_config") if isinstance(raw, dict) else None
    if not isinstance(model, dict):
        if base is None:
            raise AdaptkitError(f"{ckpt_dir / ADAPTER_CONFIG_FILE}: no model_config")
        return peek_config(base)
    run = raw.get("config") if isinstance(raw.get("config"), dict) else {}
    ctx = {"context_len": run["context_len"]} if "context_len" in run else {}
    return parse_config({**model, **ctx}, str(ckpt_dir / ADAPTER_CONFIG_FILE))


def peek_checkpoint(path: Path | str, base: Path | str | None = None) -> ModelConfig:
    """`peek_config`, plus a full checkpoint's metadata.json read and checked: every small file
    a load would refuse is refused here, before the heavy work (a model build, a rollout)."""
    config = peek_config(path, base)
    ckpt_dir = resolve_checkpoint(path)
    if not is_adapter(ckpt_dir):
        CheckpointMeta.read(ckpt_dir / METADATA_FILE)
    return config


# -- merging -----------------------------------------------------------------------------------
def merge_target(adapter_path: Path, out: Path | str) -> Path:
    """`out` itself when it is named NNNN_epoch, else out/<the adapter's NNNN>_epoch."""
    out = Path(out)
    if EPOCH_RE.match(out.name):
        return out
    m = EPOCH_RE.match(adapter_path.name)
    return out / (adapter_path.name if m else "0000_epoch")


def merge_adapter(
    adapter_path: Path | str, out: Path | str, base: Path | str | None = None
) -> Path:
    """Write base + adapter as one full checkpoint (model.pth, metadata.json, config.json) in
    the reference layout; refuses to overwrite a checkpoint that exists."""
    adapter_path = resolve_checkpoint(adapter_path)
    target = merge_target(adapter_path, out)
    if target.exists() and (is_complete(target) or any(target.iterdir())):
        raise AdaptkitError(f"--out {target}: already exists; choose another folder")
    ckpt = _on_base(adapter_path, base)
    cfg, _ = read_adapter(adapter_path)
    config = {**ckpt.config.extra, **cfg.config, "merged_from": {
        "adapter": str(adapter_path), "base": str(ckpt.base_path),
        "base_fingerprint": cfg.base.fingerprint,
    }}  # fmt: skip
    return save_checkpoint(target, ckpt.model, ckpt.meta, config)
