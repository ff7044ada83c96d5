"""Adapters the PEFT way: one group on top of a base checkpoint, and merging it into one.

An adapter is a folder (an adapter-sized `NNNN_epoch` of a frozen-trunk fine-tune, or any dir):

    adapter_model.safetensors   the group's tensors, named as in model.pth
                                (encoder.{obs,acs,rews}_encoders.<g>.*, head.acs_decoders.<g>.*)
    adapter_config.json         format/version, the group, its obs/act dims, the token order, the
                                base's fingerprint and where the base was (as given + resolved),
                                the group's task metadata (stats, reward scale), the base's model
                                config and the run's config.json keys
    state.pth                   (a training epoch only) the optimiser state, for --resume

Applying one to a base is refused unless the base's weights have the fingerprint the adapter was
trained on. Loading one onto its base and merging the two into a full `NNNN_epoch` that the
reference loader reads is adaptkit.ckpt.load's job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adaptkit.ckpt.checkpoint import (
    Checkpoint,
    digest,
    fingerprint,
    load_weights,
    state_dict_report,
)
from adaptkit.ckpt.config_file import TokenOrder, parse_config
from adaptkit.ckpt.layout import ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, STATE_FILE
from adaptkit.errors import AdaptkitError
from adaptkit.fileio import atomic_dir, read_json, to_json_text, torch_save_to
from adaptkit.meta import CheckpointMeta
from adaptkit.model import GroupDims, Vintix, unwrap
from adaptkit.model.lora import lora_groups
from adaptkit.version import __version__

ADAPTER_FORMAT, ADAPTER_VERSION = "adaptkit-adapter", 2
ADAPTER_TYPE = "vintix_group"  # a whole new group (encoders + decoder), trunk untouched


@dataclass(frozen=True)
class BaseRef:
    """The base an adapter belongs to: its fingerprint, the path as the user gave it (a local
    path or a Hub reference) and the checkpoint dir it resolved to."""

    fingerprint: str
    name: str
    path: Path | None = None


@dataclass(frozen=True)
class AdapterConfig:
    """adapter_config.json, parsed."""

    group: str
    dims: GroupDims
    token_order: str
    base: BaseRef
    tasks: CheckpointMeta  # the group's tasks (complete metadata entries)
    model_config: dict[str, Any] = field(default_factory=dict)  # the base's model keys
    config: dict[str, Any] = field(default_factory=dict)  # the run's config.json keys

    def to_json(self) -> dict[str, Any]:
        return {
            "format": ADAPTER_FORMAT,
            "format_version": ADAPTER_VERSION,
            "adapter_type": ADAPTER_TYPE,
            "group": self.group,
            "obs_dim": self.dims.obs_dim,
            "act_dim": self.dims.act_dim,
            "token_order": self.token_order,
            "base_fingerprint": self.base.fingerprint,
            "base_model_name_or_path": self.base.name,
            "base_model_path": str(self.base.path) if self.base.path else None,
            "metadata": self.tasks.to_json(),
            "model_config": self.model_config,
            "config": self.config,
            "adaptkit_version": __version__,
        }

    @classmethod
    def parse(cls, raw: Any, where: str) -> AdapterConfig:
        if not isinstance(raw, dict) or raw.get("format") != ADAPTER_FORMAT:
            raise AdaptkitError(
                f"{where}: not an adaptkit adapter config (format != adaptkit-adapter)"
            )
        if raw.get("format_version") != ADAPTER_VERSION:
            raise AdaptkitError(
                f"{where}: format_version {raw.get('format_version')!r}, expected {ADAPTER_VERSION}"
            )
        kinds = {
            "group": str, "obs_dim": int, "act_dim": int, "token_order": str,
            "base_fingerprint": str, "base_model_name_or_path": str, "metadata": dict,
        }  # fmt: skip
        bad = [k for k, kind in kinds.items() if not isinstance(raw.get(k), kind)]
        if bad:
            raise AdaptkitError(f"{where}: missing or malformed {', '.join(bad)}")
        group = raw["group"]
        dims = GroupDims(raw["obs_dim"], raw["act_dim"])
        tasks = CheckpointMeta.parse(raw["metadata"], f"{where} metadata")
        if set(tasks.groups) != {group}:
            raise AdaptkitError(
                f"{where}: its metadata has groups {sorted(tasks.groups)}, expected only {group!r}"
            )
        if tasks.groups[group] != dims:
            d = tasks.groups[group]
            raise AdaptkitError(
                f"{where}: obs_dim/act_dim {dims.obs_dim}/{dims.act_dim} disagree with its "
                f"metadata's {d.obs_dim}/{d.act_dim}"
            )
        path = raw.get("base_model_path")
        return cls(
            group=group,
            dims=dims,
            token_order=raw["token_order"],
            base=BaseRef(raw["base_fingerprint"], raw["base_model_name_or_path"],
                         Path(path) if isinstance(path, str) else None),
            tasks=tasks,
            model_config=dict(raw.get("model_config") or {}),
            config=dict(raw.get("config") or {}),
        )  # fmt: skip


# -- writing -----------------------------------------------------------------------------------
def group_tensors(model: nn.Module, group: str) -> dict[str, torch.Tensor]:
    """The state-dict entries of one group (its encoders and decoder), on the CPU."""
    prefixes = Vintix.group_prefixes(group)
    return {
        k: v.detach().cpu().contiguous()
        for k, v in unwrap(model).state_dict().items()
        if k.startswith(prefixes)
    }


def adapter_config(
    model: nn.Module,
    group: str,
    meta: CheckpointMeta,
    base: BaseRef,
    config: Mapping[str, Any] | None = None,
) -> AdapterConfig:
    """The config of `model`'s group `group` as an adapter of `base` (checked consistent)."""
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
    return AdapterConfig(
        group=group,
        dims=model.groups[group],
        token_order=model.config.token_order,
        base=base,
        tasks=tasks,
        model_config=model.config.model_dict(),
        config=json.loads(json.dumps(dict(config or {}), default=str)),
    )


def canonical_header(blob: bytes) -> bytes:
    """A safetensors file with its JSON header's keys in sorted order. The writer keeps the
    metadata in a hash map whose order changes from process to process, so the same tensors
    gave different bytes (a resumed run's file failed a checksum against the uninterrupted
    run's). The format: an 8-byte little-endian header length, the JSON header padded with
    spaces to that length, then the tensor bytes, whose offsets the header gives; the same
    keys and values in another order take the same length, so nothing else moves."""
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    if len(text) > n:  # never: the writer's own JSON is as compact
        return blob
    return blob[:8] + text.ljust(n, b" ") + blob[8 + n :]


def write_adapter_files(folder: Path, model: nn.Module, cfg: AdapterConfig) -> None:
    """adapter_model.safetensors + adapter_config.json into `folder`: always the temp folder of
    an atomic_dir (a checkpoint's or an adapter's), which makes them durable and atomic."""
    from safetensors.torch import save

    tensors = group_tensors(model, cfg.group)
    # bytes written by Python: a full disk is an OSError naming its cause
    (folder / ADAPTER_WEIGHTS_FILE).write_bytes(
        canonical_header(save(tensors, metadata={"format": "pt", "group": cfg.group}))
    )
    (folder / ADAPTER_CONFIG_FILE).write_text(to_json_text(cfg.to_json()))


def save_adapter(
    path: Path | str,
    model: nn.Module,
    group: str,
    meta: CheckpointMeta,
    base: BaseRef,
    config: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
) -> Path:
    """An adapter dir (+ state.pth when given), written atomically like a checkpoint."""
    cfg = adapter_config(model, group, meta, base, config)
    with atomic_dir(path, "adapter") as tmp:
        write_adapter_files(tmp, model, cfg)
        if state is not None:
            with open(tmp / STATE_FILE, "wb") as fh:
                torch_save_to(dict(state), fh, Path(path) / STATE_FILE, "adapter")
    return Path(path)


# -- reading -----------------------------------------------------------------------------------
def read_adapter(path: Path | str) -> tuple[AdapterConfig, dict[str, torch.Tensor]]:
    """adapter_config.json and the tensors of an adapter dir, validated."""
    path = Path(path)
    if path.is_file() and path.name in (ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE):
        path = path.parent
    if not path.is_dir():
        raise AdaptkitError(f"adapter {path}: no such directory")
    cfg = AdapterConfig.parse(
        read_json(path / ADAPTER_CONFIG_FILE), str(path / ADAPTER_CONFIG_FILE)
    )
    weights = path / ADAPTER_WEIGHTS_FILE
    try:
        from safetensors.torch import load_file

        tensors = load_file(str(weights))
    except FileNotFoundError:
        raise AdaptkitError(f"{weights}: file not found") from None
    except Exception as exc:  # truncated or not a safetensors file
        raise AdaptkitError(
            f"{weights}: not a readable safetensors file ({type(exc).__name__})"
        ) from None
    foreign = [k for k in tensors if not k.startswith(Vintix.group_prefixes(cfg.group))]
    if foreign:
        raise AdaptkitError(
            f"{weights}: tensors outside group {cfg.group!r}: {', '.join(foreign[:3])} (an adapter "
            "holds one group's encoders and decoder only)"
        )
    return cfg, tensors


def apply_adapter(
    base: Checkpoint, adapter_path: Path | str, fresh_hashes: bool = False
) -> Checkpoint:
    """Base + the adapter's group. Refused when the base's weights are not the ones the adapter
    was trained on. The base Checkpoint's model gains the group (in place).

    `fresh_hashes`: the base was just loaded, so the hashes taken while loading are those of
    its live weights (no second pass over them); otherwise the live weights are hashed."""
    adapter_path = Path(adapter_path)
    cfg, tensors = read_adapter(adapter_path)
    where = f"adapter {adapter_path}"
    model, group = base.model, cfg.group
    if group in model.groups:
        raise AdaptkitError(f"{where}: base {base.path} already has group {group!r}")
    current = base.tensor_hashes if fresh_hashes and base.tensor_hashes else fingerprint(model)
    got = digest(current)
    if got != cfg.base.fingerprint:
        raise AdaptkitError(
            f"{where}: trained on base {cfg.base.fingerprint[:16]} ({cfg.base.name}), but "
            f"{base.path} has fingerprint {got[:16]}; load it with its own base (--base)"
        )
    order = _token_order(base, cfg, adapter_path)
    clash = [t for t in cfg.tasks.tasks if t in base.meta]
    if clash:
        raise AdaptkitError(f"{where}: tasks {clash} already exist in {base.path}")
    model.add_group_modules(group, cfg.dims)
    try:
        lora = lora_groups(cfg.tasks).get(group)
        if lora is not None:  # the group's LoRA modules, before its weights load
            model.add_lora(group, lora.rank, lora.alpha)
        prefixes = Vintix.group_prefixes(group)
        expected = {k: v.shape for k, v in model.state_dict().items() if k.startswith(prefixes)}
        report = state_dict_report(expected, {k: v.shape for k, v in tensors.items()})
        if report:
            raise AdaptkitError(f"{where}: " + " | ".join(report))
        device = next(model.parameters()).device
        # group_prefixes and group_modules list the modules in the same order (LoRA last, and
        # only when the group has it)
        for prefix, module in zip(prefixes, model.group_modules(group), strict=False):
            sub = {
                k[len(prefix) :]: v.to(device) for k, v in tensors.items() if k.startswith(prefix)
            }
            load_weights(module, sub, f"{where} ({prefix}*)", "its adapter_config.json")
    except BaseException:
        model.remove_group(group)
        raise
    meta = base.meta.copy()
    for t in cfg.tasks.tasks.values():
        meta.add(t)
    config = base.config
    if "context_len" in cfg.config:  # what the fine-tune trained (and a KV cache should) use
        config = parse_config({**config.to_dict(), "context_len": cfg.config["context_len"]}, where)
    hashes = {**current, **fingerprint(tensors)}
    return Checkpoint(
        model, meta, config, adapter_path, hashes, digest(hashes),
        [*base.adapters, adapter_path], base_path=base.path, token_order=order,
    )  # fmt: skip


def _token_order(base: Checkpoint, cfg: AdapterConfig, path: Path) -> TokenOrder | None:
    """The adapter was trained with a definite order (its adapter_config.json records it): it
    settles a base whose order was only inferred, and contradicts one given or recorded."""
    current = base.token_order
    if cfg.token_order == base.config.token_order:
        return current
    if current is not None and current.settled:
        raise AdaptkitError(
            f"adapter {path}: trained with token order {cfg.token_order}, but base {base.path} "
            f"uses {current.describe()}"
        )
    base.model.set_token_order(cfg.token_order)
    base.config = base.model.config
    return TokenOrder(cfg.token_order, f"recorded in adapter {path.name}", True)
