"""Causal transformer with QK-norm and ALiBi, plus the one-token step used with a KV cache."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from adaptkit.model.config import ModelConfig


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """The standard geometric ALiBi slopes (Press et al.), also for non-power-of-two head counts."""

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    if math.log2(n_heads).is_integer():
        slopes = power_of_two(n_heads)
    else:
        closest = 2 ** math.floor(math.log2(n_heads))
        slopes = power_of_two(closest) + power_of_two(2 * closest)[0::2][: n_heads - closest]
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(
    slopes: torch.Tensor, t: int, window: int | None = None, device: torch.device | None = None
) -> torch.Tensor:
    """[heads, t, t] float bias: −slope·(i−j) for keys j ≤ i (within `window`), else −inf."""
    pos = torch.arange(t, device=device)
    dist = pos[:, None] - pos[None, :]  # i - j
    allowed = dist >= 0
    if window is not None:
        allowed &= dist < window
    bias = -slopes.to(device)[:, None, None] * dist.to(torch.float32)
    return bias.masked_fill(~allowed, float("-inf"))


def _sdpa_fp32(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, dropout: float
) -> torch.Tensor:
    """Attention core in fp32 even under bf16 autocast: long-range ALiBi biases and the softmax
    lose too much precision in bf16."""
    dtype = q.dtype
    with torch.autocast(device_type=q.device.type, enabled=False):
        out = F.scaled_dot_product_attention(
            q.float(), k.float(), v.float(), attn_mask=bias, dropout_p=dropout
        )
    return out.to(dtype)


class Attention(nn.Module):
    """Multi-head self-attention; `in_proj` output laid out as (3, heads, head_dim)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        h = config.hidden_dim
        self.n_heads = config.transformer_heads
        self.head_dim = config.head_dim
        self.attn_dropout = config.attn_dropout
        self.in_proj = nn.Linear(h, 3 * h, bias=config.bias)
        self.out_proj = nn.Linear(h, h, bias=config.bias)
        if config.normalize_qk:
            self.q_norm = nn.LayerNorm(self.head_dim, bias=config.bias)
            self.k_norm = nn.LayerNorm(self.head_dim, bias=config.bias)
        else:
            self.q_norm = self.k_norm = None

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, _ = x.shape
        qkv = self.in_proj(x).view(b, t, 3, self.n_heads, self.head_dim)
        q, k, v = qkv.unbind(dim=2)  # each [b, t, heads, head_dim]
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        # -> [b, heads, t, head_dim]
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def _out(self, y: torch.Tensor) -> torch.Tensor:
        b, _, t, _ = y.shape
        return self.out_proj(y.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        q, k, v = self._qkv(x)
        dropout = self.attn_dropout if self.training else 0.0
        return self._out(_sdpa_fp32(q, k, v, bias, dropout))

    def step(
        self,
        x: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        slot: int,
        bias: torch.Tensor,
    ) -> torch.Tensor:
        """One new token per env: write its K/V into ring-buffer `slot`, attend over the cache."""
        q, k, v = self._qkv(x)  # [B, heads, 1, hd]
        k_cache[:, :, slot] = k[:, :, 0].to(k_cache.dtype)
        v_cache[:, :, slot] = v[:, :, 0].to(v_cache.dtype)
        return self._out(_sdpa_fp32(q, k_cache, v_cache, bias, 0.0))


class MLP(nn.Module):
    """GPT-NeoX MLP: fc → GELU → proj."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.hidden_dim, config.intermediate_size, bias=config.bias)
        self.proj = nn.Linear(config.intermediate_size, config.hidden_dim, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    """Pre-LN block (optionally parallel residual, as GPT-NeoX)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.parallel = config.parallel_residual
        self.norm1 = nn.LayerNorm(config.hidden_dim, bias=config.bias)
        self.norm2 = (
            None
            if config.shared_attention_norm
            else nn.LayerNorm(config.hidden_dim, bias=config.bias)
        )
        self.attention = Attention(config)
        self.mlp = MLP(config)
        self.drop = nn.Dropout(config.residual_dropout)

    def _residual(self, x: torch.Tensor, attn_out: torch.Tensor, n1: torch.Tensor) -> torch.Tensor:
        if self.parallel:
            n2 = n1 if self.norm2 is None else self.norm2(x)
            return x + self.drop(attn_out) + self.drop(self.mlp(n2))
        x = x + self.drop(attn_out)
        return x + self.drop(self.mlp(self.norm2(x)))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        n1 = self.norm1(x)
        return self._residual(x, self.attention(n1, bias), n1)

    def step(
        self, x: torch.Tensor, k_cache, v_cache, slot: int, bias: torch.Tensor
    ) -> torch.Tensor:
        n1 = self.norm1(x)
        return self._residual(x, self.attention.step(n1, k_cache, v_cache, slot, bias), n1)


class Transformer(nn.Module):
    """`blocks` + final LayerNorm `ln_f`; ALiBi slopes are a buffer outside the state dict."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.transformer_depth))
        self.ln_f = nn.LayerNorm(config.hidden_dim, bias=config.bias)
        self.register_buffer("slopes", alibi_slopes(config.transformer_heads), persistent=False)
        self._bias: torch.Tensor | None = None  # cached ALiBi bias and the (T, window, device)
        self._bias_key: tuple | None = None  # it was built for

    def forward(self, x: torch.Tensor, window: int | None = None) -> torch.Tensor:
        """x [B, T, H] → [B, T, H]. `window` restricts each query to its last `window` keys —
        exactly what a rolling KV cache of that size computes."""
        key = (x.shape[1], window, x.device)
        if self._bias_key != key:  # one [1, heads, T, T] bias per shape, not one per forward
            self._bias = alibi_bias(self.slopes, x.shape[1], window, x.device)[None]
            self._bias_key = key
        bias = self._bias
        for block in self.blocks:
            x = block(x, bias)
        return self.ln_f(x)

    def step(self, x: torch.Tensor, cache, slot: int, bias: torch.Tensor) -> torch.Tensor:
        for block, k_cache, v_cache in zip(self.blocks, cache.k, cache.v, strict=True):
            x = block.step(x, k_cache, v_cache, slot, bias)
        return self.ln_f(x)
