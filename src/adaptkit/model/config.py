"""Model configuration: the released Vintix config.json model keys, plus context and token order."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from adaptkit.errors import AdaptkitError, short_repr

TOKEN_ORDERS = ("obs,act,rew", "act,rew,obs")  # released / quadruped fork
_BOOLS = (
    "normalize_qk",
    "bias",
    "parallel_residual",
    "shared_attention_norm",
    "inner_ep_pos_enc",
    "norm_acs",
    "norm_obs",
)
# Hard caps far above any Vintix (released: depth 20, hidden 1024, intermediate 4096, context
# 8192): a size beyond them is a typo or an attack, refused before anything is built.
SIZE_CAPS = {
    "observation_emb_dim": 1 << 16,
    "action_emb_dim": 1 << 16,
    "reward_emb_dim": 1 << 16,
    "hidden_dim": 1 << 16,
    "transformer_depth": 1024,
    "transformer_heads": 1024,
    "intermediate_size": 1 << 18,
    "context_len": 1 << 20,
}
# The keys that fix the weights' shapes: a checkpoint's config.json must give them (a default
# would only make the weights look wrong).
REQUIRED_KEYS = (
    "observation_emb_dim",
    "action_emb_dim",
    "reward_emb_dim",
    "transformer_depth",
    "transformer_heads",
    "intermediate_size",
)
_SUPPORTED = {"norm_class": ("LayerNorm",), "mlp_class": ("GptNeoxMLP",)}


@dataclass(frozen=True)
class GroupDims:
    """Observation and action widths of one group (all its tasks share them)."""

    obs_dim: int
    act_dim: int

    def as_dict(self) -> dict[str, int]:
        return {"obs_dim": self.obs_dim, "act_dim": self.act_dim}


@dataclass
class ModelConfig:
    """Architecture keys of a Vintix config.json. Defaults: a small model for 2 CPU cores.

    `extra` keeps every other key of config.json (data, optimiser, ...) so it round-trips.
    """

    observation_emb_dim: int = 80
    action_emb_dim: int = 40
    reward_emb_dim: int = 8
    hidden_dim: int | None = None  # = the sum of the three embedding widths; filled in if absent
    transformer_depth: int = 3
    transformer_heads: int = 4
    intermediate_size: int = 512
    attn_dropout: float = 0.0
    residual_dropout: float = 0.0
    normalize_qk: bool = True
    bias: bool = True
    parallel_residual: bool = False
    shared_attention_norm: bool = False
    norm_class: str = "LayerNorm"
    mlp_class: str = "GptNeoxMLP"
    inner_ep_pos_enc: bool = False
    norm_acs: bool = False
    norm_obs: bool = True
    context_len: int = 256
    token_order: str = "obs,act,rew"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._validate()

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.name != "extra")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Model keys from a config.json dict; every other key is kept in `extra`."""
        if not isinstance(d, dict):
            raise AdaptkitError(f"expected a JSON object, got {type(d).__name__}")
        names = set(cls.field_names())
        known = {k: v for k, v in d.items() if k in names}
        extra = {k: v for k, v in d.items() if k not in names}
        if isinstance(known.get("token_order"), list | tuple):
            known["token_order"] = ",".join(known["token_order"])
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """config.json content: extra keys first, then the model keys (which win)."""
        return {**self.extra, **self.model_dict()}

    def model_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.field_names()}

    @classmethod
    def released(cls, **overrides: Any) -> ModelConfig:
        """The released Vintix sizes (≈252M transformer parameters)."""
        base = dict(
            observation_emb_dim=511,
            action_emb_dim=511,
            reward_emb_dim=2,
            transformer_depth=20,
            transformer_heads=16,
            intermediate_size=4096,
            context_len=8192,
        )
        return cls(**{**base, **overrides})

    @classmethod
    def fork(cls, **overrides: Any) -> ModelConfig:
        """The quadruped fork's sizes and token order."""
        base = dict(
            observation_emb_dim=127,
            action_emb_dim=127,
            reward_emb_dim=2,
            transformer_depth=3,
            transformer_heads=4,
            intermediate_size=128,
            attn_dropout=0.1,
            residual_dropout=0.1,
            token_order="act,rew,obs",
        )
        return cls(**{**base, **overrides})

    # -- derived ---------------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.hidden_dim // self.transformer_heads

    def transformer_parameters(self) -> int:
        """Parameters of the transformer blocks (attention, MLP, norms, biases): all but the
        small per-group encoders and heads. From the sizes alone, nothing built."""
        h, i = self.hidden_dim, self.intermediate_size
        assert h is not None
        per_block = 4 * h * h + 4 * h + 2 * h * i + i + h + 4 * h
        return self.transformer_depth * per_block

    @property
    def order(self) -> tuple[str, ...]:
        return tuple(self.token_order.split(","))

    # -- validation ------------------------------------------------------------------------
    def _fail(self, name: str, expected: str) -> None:
        raise AdaptkitError(f"field '{name}' {expected}, got {short_repr(getattr(self, name))}")

    def _validate(self) -> None:
        for name in (
            "observation_emb_dim",
            "action_emb_dim",
            "reward_emb_dim",
            "hidden_dim",
            "transformer_depth",
            "transformer_heads",
            "intermediate_size",
            "context_len",
        ):
            value = getattr(self, name)
            if name == "hidden_dim" and value is None:  # derived: the three widths' sum
                self.hidden_dim = value = (
                    self.observation_emb_dim + self.action_emb_dim + self.reward_emb_dim
                )
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                self._fail(name, "must be a positive integer")
            if value > SIZE_CAPS[name]:
                self._fail(name, f"must be at most {SIZE_CAPS[name]:,} (adaptkit's hard cap)")
        emb = self.observation_emb_dim + self.action_emb_dim + self.reward_emb_dim
        if self.hidden_dim != emb:
            self._fail(
                "hidden_dim",
                f"must equal observation_emb_dim + action_emb_dim + reward_emb_dim = {emb}",
            )
        if self.hidden_dim % self.transformer_heads:
            self._fail(
                "hidden_dim", f"must be divisible by transformer_heads={self.transformer_heads}"
            )
        for name in _BOOLS:
            if not isinstance(getattr(self, name), bool):
                self._fail(name, "must be true or false (a JSON boolean, not a string)")
        for name in ("norm_class", "mlp_class", "token_order"):
            if not isinstance(getattr(self, name), str):
                self._fail(name, "must be a string")
        for name in ("attn_dropout", "residual_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                self._fail(name, "must be a number in [0, 1)")
            if not 0.0 <= value < 1.0:
                self._fail(name, "must be in [0, 1)")
        for name, allowed in _SUPPORTED.items():
            if getattr(self, name) not in allowed:
                self._fail(name, f"must be one of {list(allowed)}")
        if self.token_order not in TOKEN_ORDERS:
            self._fail("token_order", f"must be one of {list(TOKEN_ORDERS)}")
        if self.inner_ep_pos_enc:
            self._fail(
                "inner_ep_pos_enc", "is not supported by adaptkit (ALiBi only); expected false"
            )
        if self.shared_attention_norm and not self.parallel_residual:
            self._fail("shared_attention_norm", "needs parallel_residual=true")
