"""The Vintix model: config, modules, KV cache."""

from adaptkit.model.attention import alibi_bias, alibi_slopes
from adaptkit.model.cache import KVCache
from adaptkit.model.config import TOKEN_ORDERS, GroupDims, ModelConfig
from adaptkit.model.vintix import Vintix, action_loss
from adaptkit.model.wrap import unwrap

__all__ = [
    "TOKEN_ORDERS",
    "GroupDims",
    "KVCache",
    "ModelConfig",
    "Vintix",
    "action_loss",
    "alibi_bias",
    "alibi_slopes",
    "unwrap",
]
