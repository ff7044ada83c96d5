"""config.json of a checkpoint and model-config files: parsing, validation, token order.

The token order of a checkpoint (`config_token_order`), in this order:
1. given explicitly (`--token-order`);
2. recorded in config.json (`token_order`; adaptkit always records it);
3. not recorded: the quadruped fork's own training keys in config.json (`random_sample_frac`,
   `finetune_*`) mean the fork's act,rew,obs; otherwise the released obs,act,rew. Such a guess is
   unsettled: with data of the checkpoint's own tasks at hand, adaptkit.ckpt.token_order's loss
   check decides instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptkit.errors import AdaptkitError
from adaptkit.fileio import not_a_file, read_json, read_yaml
from adaptkit.machine import available_memory
from adaptkit.model.config import REQUIRED_KEYS, TOKEN_ORDERS, ModelConfig

# Keys the quadruped fork's training script leaves in config.json (SPEC.md); `finetune_*` prefixed.
FORK_CONFIG_KEYS = ("random_sample_frac",)
FORK_CONFIG_PREFIX = "finetune_"
FORK_TOKEN_ORDER, RELEASED_TOKEN_ORDER = "act,rew,obs", "obs,act,rew"


@dataclass(frozen=True)
class TokenOrder:
    """A checkpoint's token order and why. `settled`: given or recorded (no check needed)."""

    order: str
    reason: str
    settled: bool

    def describe(self) -> str:
        return f"{self.order} ({self.reason})"


def config_token_order(raw: Mapping[str, Any], given: str | None = None) -> TokenOrder:
    """The token order of a config.json object (module docstring's order)."""
    if given is not None:
        if given not in TOKEN_ORDERS:
            raise AdaptkitError(
                f"--token-order: expected one of {', '.join(TOKEN_ORDERS)}, got {given!r}"
            )
        return TokenOrder(given, "given with --token-order", True)
    if "token_order" in raw:
        value = raw["token_order"]
        if isinstance(value, list | tuple):
            value = ",".join(map(str, value))
        return TokenOrder(value, "recorded in config.json", True)
    fork = [k for k in raw if k in FORK_CONFIG_KEYS or str(k).startswith(FORK_CONFIG_PREFIX)]
    if fork:
        keys = ", ".join(fork[:3]) + (", ..." if len(fork) > 3 else "")
        return TokenOrder(
            FORK_TOKEN_ORDER,
            f"not recorded; config.json has the quadruped fork's training keys ({keys}), and "
            "the fork orders tokens act,rew,obs",
            False,
        )
    return TokenOrder(
        RELEASED_TOKEN_ORDER,
        "not recorded and config.json has no quadruped-fork training keys: the released "
        "Vintix order",
        False,
    )


# the fewest bytes a parameter takes in memory (bf16): a model refused by this bound cannot fit
MIN_BYTES_PER_PARAMETER = 2


def parse_config(raw: Any, where: str, *, required: bool = False) -> ModelConfig:
    """A config.json object → ModelConfig (strict types, sizes capped; unknown keys kept in
    `extra`). `required`: the keys that fix the weights' shapes must be there (a checkpoint's
    config.json). The model's size is checked against free memory before anything is built."""
    if not isinstance(raw, dict):
        raise AdaptkitError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in raw] if required else []
    if missing:
        raise AdaptkitError(
            f"{where}: missing {', '.join(repr(k) for k in missing)} (the model's sizes: "
            "a checkpoint's config.json must give them)"
        )
    try:
        config = ModelConfig.from_dict(raw)
    except AdaptkitError as exc:
        raise AdaptkitError(f"{where}: {exc}") from None
    check_fits_memory(config, where)
    return config


def check_fits_memory(config: ModelConfig, where: str) -> None:
    """Refuse a model whose transformer alone cannot fit the free memory (parameters × the
    fewest bytes one takes), before anything is allocated."""
    params = config.transformer_parameters()
    need, free = params * MIN_BYTES_PER_PARAMETER, available_memory()
    if need > free:
        raise AdaptkitError(
            f"{where}: a model of about {params:,} parameters (transformer_depth="
            f"{config.transformer_depth}, hidden_dim={config.hidden_dim}, intermediate_size="
            f"{config.intermediate_size}) needs at least {need / 1e9:,.2f} GB; "
            f"{free / 1e9:,.2f} GB of memory is free"
        )


def checkpoint_config(
    path: Path, overrides: Mapping[str, Any] | None = None, token_order: str | None = None
) -> tuple[ModelConfig, TokenOrder]:
    """config.json (with `overrides` patching its keys) and its token order: `token_order`
    given, recorded, or inferred (`config_token_order`); the config carries the order used."""
    raw = read_json(path)
    if not isinstance(raw, dict):
        return parse_config(raw, str(path)), TokenOrder(RELEASED_TOKEN_ORDER, "", False)
    raw = {**raw, **(overrides or {})}
    if token_order is None and overrides and "token_order" in overrides:
        token_order = overrides["token_order"]
    order = config_token_order(raw, token_order)
    return parse_config({**raw, "token_order": order.order}, str(path), required=True), order


def read_config(path: Path, overrides: Mapping[str, Any] | None = None) -> ModelConfig:
    """config.json, with `overrides` patching its keys before validation."""
    return checkpoint_config(path, overrides)[0]


# config.json keys of the reference that are training settings, not model sizes: a model config
# that sets one is told which option to use instead of having it silently ignored
TRAINING_KEYS = {
    "lr": "--lr",
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "grad_accum_steps": "--grad-accum",
    "warmup_ratio": "--warmup-ratio",
    "weight_decay": "--weight-decay",
    "precision": "--precision",
    "save_every": "--save-every",
    "seed": "--seed",
    "trajectory_sparsity": "--trajectory-sparsity",
    "dataset_config_paths": "the CONFIG arguments",
}


def read_model_config(source: Mapping[str, Any] | str | Path | None) -> ModelConfig:
    """A model size: a dict of model keys, or a YAML/JSON file of them; None: the default.

    Strict, unlike a checkpoint's config.json (whose other keys pass through): a key that is not
    a model key is an error naming it, and so is a key given twice."""
    if source is None:
        return ModelConfig()
    if isinstance(source, Mapping):
        raw: Any = dict(source)
        where = "model config"
    else:
        path = Path(source)
        where = f"model config {path}"
        if not path.is_file():
            raise AdaptkitError(f"{where}: {not_a_file(path)}")
        try:
            raw = read_yaml(path, "model config")  # YAML is a superset of JSON
        except AdaptkitError as exc:
            raise AdaptkitError(f"model config {exc}") from None
        if not isinstance(raw, dict):
            raise AdaptkitError(f"{where}: expected a mapping of model config keys")
    names = ModelConfig.field_names()
    for key in raw:
        if key not in names:
            hint = (
                f"it is a training setting: pass {TRAINING_KEYS[key]}"
                if key in TRAINING_KEYS
                else f"model keys are {', '.join(names)}"
            )
            raise AdaptkitError(f"{where}: unknown key {key!r} ({hint})")
    return parse_config(raw, where)
