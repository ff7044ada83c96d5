"""Causal transformer with QK-norm and ALiBi, plus the one-token step used with a KV cache.

Attention never materialises a (heads × T × T) bias: up to `BLOCK` tokens one fused call with a
[heads, T, T] bias; beyond, queries go in blocks of `BLOCK` (`blocked_alibi_attention`), each
attending only to the keys it can see (the upper triangle is skipped), with its slice of one
[heads, BLOCK, ≈T] ALiBi template. Its backward keeps q, k, v, the output and the per-row
log-sum-exp — never a T × T matrix — so memory grows linearly with the context.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from adaptkit.model.config import ModelConfig

BLOCK = 512  # query rows per attention call: bias [heads, 512, ≈T] fp32, 256 MB at 16 × 8192

# The CPU flash kernel's forward returns the log-sum-exp its backward needs, so a blocked
# backward recomputes nothing. Elsewhere (CUDA, or a torch without these ops) a block is
# recomputed in the backward with the public scaled_dot_product_attention.
_FLASH_CPU = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
_FLASH_CPU_BWD = getattr(
    torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None
)


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
    return _relative_bias(slopes, 0, t, t, window, device)


def _relative_bias(
    slopes: torch.Tensor,
    first_query: int,
    rows: int,
    cols: int,
    window: int | None,
    device: torch.device | None,
) -> torch.Tensor:
    """[heads, rows, cols] fp32: query i = first_query + row vs key j = col."""
    i = torch.arange(first_query, first_query + rows, device=device)
    dist = i[:, None] - torch.arange(cols, device=device)[None, :]  # i - j
    allowed = dist >= 0
    if window is not None:
        allowed &= dist < window
    bias = -slopes.to(device)[:, None, None] * dist.to(torch.float32)
    return bias.masked_fill(~allowed, float("-inf"))


class AlibiTemplate:
    """The ALiBi bias of every query block, as slices of one [1, heads, block, P + block] tensor.

    The bias depends only on the distance i − j (and the window), so the block of queries
    [s, e) against keys [lo, e) is the template's rows [0, e − s) and columns
    [P − s + lo, P + e − s), with P the start of the last block.
    """

    def __init__(
        self, slopes: torch.Tensor, t: int, block: int, window: int | None, device: torch.device
    ) -> None:
        self.t, self.block, self.window = t, block, window
        self.last = ((t - 1) // block) * block  # P
        self.bias = _relative_bias(slopes, self.last, block, self.last + block, window, device)[
            None
        ]

    def blocks(self):
        """(s, e, lo, bias) per query block: rows [s, e) attend to keys [lo, e)."""
        for s in range(0, self.t, self.block):
            e = min(s + self.block, self.t)
            lo = 0 if self.window is None else max(0, s - self.window + 1)
            p = self.last
            yield s, e, lo, self.bias[:, :, : e - s, p - s + lo : p + e - s]


def _mask(bias: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """The bias as the kernel takes it: fp32 on CPU (its kernels add it in fp32 also for bf16
    q/k/v); elsewhere in q's dtype, which the fused CUDA kernels require."""
    return bias if q.device.type == "cpu" else bias.to(q.dtype)


def _flash_ok(q: torch.Tensor) -> bool:
    return q.device.type == "cpu" and _FLASH_CPU is not None and _FLASH_CPU_BWD is not None


class _BlockedAttention(torch.autograd.Function):
    """Exact causal ALiBi attention, one query block at a time (see AlibiTemplate)."""

    @staticmethod
    def forward(ctx, q, k, v, template: AlibiTemplate, scale: float):  # type: ignore[override]
        out = torch.empty_like(q)
        flash = _flash_ok(q)
        lse = q.new_empty(q.shape[:-1], dtype=torch.float32) if flash else None
        for s, e, lo, bias in template.blocks():
            qb, kb, vb = q[:, :, s:e], k[:, :, lo:e], v[:, :, lo:e]
            if flash:
                o, lse[:, :, s:e] = _FLASH_CPU(qb, kb, vb, 0.0, False, attn_mask=bias, scale=scale)
            else:
                o = F.scaled_dot_product_attention(
                    qb, kb, vb, attn_mask=_mask(bias, q), scale=scale
                )
            out[:, :, s:e] = o
        ctx.template, ctx.scale, ctx.flash = template, scale, flash
        ctx.save_for_backward(q, k, v, out, lse if flash else out)
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        q, k, v, out, lse = ctx.saved_tensors
        grad = grad.contiguous()
        dq = torch.zeros_like(q)
        # keys get contributions from many blocks: accumulate them in fp32
        dk = torch.zeros(k.shape, dtype=torch.float32, device=k.device)
        dv = torch.zeros(v.shape, dtype=torch.float32, device=v.device)
        for s, e, lo, bias in ctx.template.blocks():
            qb, kb, vb, gb = q[:, :, s:e], k[:, :, lo:e], v[:, :, lo:e], grad[:, :, s:e]
            if ctx.flash:
                gq, gk, gv = _FLASH_CPU_BWD(
                    gb, qb, kb, vb, out[:, :, s:e], lse[:, :, s:e], 0.0, False,
                    attn_mask=bias, scale=ctx.scale,
                )  # fmt: skip
            else:  # recompute this block with autograd
                with torch.enable_grad():
                    qb, kb, vb = (t.detach().requires_grad_() for t in (qb, kb, vb))
                    o = F.scaled_dot_product_attention(
                        qb, kb, vb, attn_mask=_mask(bias, qb), scale=ctx.scale
                    )
                    gq, gk, gv = torch.autograd.grad(o, (qb, kb, vb), gb)
            dq[:, :, s:e] = gq
            dk[:, :, lo:e] += gk
            dv[:, :, lo:e] += gv
        return dq, dk.to(k.dtype), dv.to(v.dtype), None, None


def blocked_alibi_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, template: AlibiTemplate
) -> torch.Tensor:
    """[B, heads, T, hd] q, k, v → attention output, block by block (exact, memory-lean)."""
    return _BlockedAttention.apply(q, k, v, template, q.shape[-1] ** -0.5)


def _attention_dtype(q: torch.Tensor) -> torch.dtype:
    """The autocast dtype when autocast is on (bf16 q/k/v; the ALiBi bias and the softmax
    accumulate in fp32 inside the kernel), else q's own dtype."""
    dev = q.device.type
    if torch.is_autocast_enabled(dev):
        return torch.get_autocast_dtype(dev)
    return q.dtype


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

    def forward(self, x: torch.Tensor, bias: torch.Tensor | AlibiTemplate) -> torch.Tensor:
        """`bias`: a full [1, heads, T, T] bias, or the template of blocked attention."""
        q, k, v = self._qkv(x)
        dt = _attention_dtype(q)
        q, k, v = q.to(dt), k.to(dt), v.to(dt)
        with torch.autocast(device_type=x.device.type, enabled=False):
            if isinstance(bias, AlibiTemplate):
                y = blocked_alibi_attention(q, k, v, bias)
            else:
                dropout = self.attn_dropout if self.training else 0.0
                y = F.scaled_dot_product_attention(
                    q, k, v, attn_mask=_mask(bias, q), dropout_p=dropout
                )
        return self._out(y)

    def step(
        self,
        x: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        slot: int,
        bias: torch.Tensor,
    ) -> torch.Tensor:
        """One new token per env: write its K/V into ring-buffer `slot`, attend over the cache
        in the cache's dtype (one read of the cache per step: no upcast copy of it)."""
        q, k, v = self._qkv(x)  # [B, heads, 1, hd]
        k_cache[:, :, slot] = k[:, :, 0].to(k_cache.dtype)
        v_cache[:, :, slot] = v[:, :, 0].to(v_cache.dtype)
        with torch.autocast(device_type=x.device.type, enabled=False):
            q = q.to(k_cache.dtype)
            if x.device.type == "cpu":
                # two GEMVs and a [B, heads, 1, W] fp32 softmax: on CPU this reads the cache
                # faster than the flash kernel's one-query path (1.2× fp32, 3× bf16, measured)
                scores = torch.matmul(q, k_cache.transpose(-1, -2)).float()
                scores = scores * self.head_dim**-0.5 + bias
                y = torch.matmul(torch.softmax(scores, dim=-1).to(v_cache.dtype), v_cache)
            else:
                y = F.scaled_dot_product_attention(q, k_cache, v_cache, attn_mask=_mask(bias, q))
        return self._out(y.to(x.dtype))


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

    def forward(self, x: torch.Tensor, bias: torch.Tensor | AlibiTemplate) -> torch.Tensor:
        n1 = self.norm1(x)
        return self._residual(x, self.attention(n1, bias), n1)

    def step(
        self, x: torch.Tensor, k_cache, v_cache, slot: int, bias: torch.Tensor
    ) -> torch.Tensor:
        n1 = self.norm1(x)
        return self._residual(x, self.attention.step(n1, k_cache, v_cache, slot, bias), n1)


class Transformer(nn.Module):
    """`blocks` + final LayerNorm `ln_f`; ALiBi slopes are a buffer outside the state dict.

    `checkpointing`: recompute each block in the backward instead of keeping its activations
    (one block's input per layer is kept) — what lets long contexts train in little memory.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_heads = config.transformer_heads
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.transformer_depth))
        self.ln_f = nn.LayerNorm(config.hidden_dim, bias=config.bias)
        self.register_buffer("slopes", alibi_slopes(config.transformer_heads), persistent=False)
        self.block_size = BLOCK
        self.checkpointing = False
        self._bias: torch.Tensor | AlibiTemplate | None = None  # cached ALiBi bias (or
        self._bias_key: tuple | None = None  # template) and the (T, window, device, block) key

    def reset_slopes(self, device: torch.device | str = "cpu") -> None:
        """Rebuild the (non-persistent) slopes, e.g. after building the model on 'meta'."""
        self.slopes = alibi_slopes(self.n_heads).to(device)
        self._bias = self._bias_key = None

    def attention_bias(
        self, t: int, window: int | None, device: torch.device
    ) -> torch.Tensor | AlibiTemplate:
        """The full bias up to `block_size` tokens (and with attention dropout, which the blocked
        kernel does not do), else the blocked template. Cached per shape, not built per forward."""
        dropout = self.training and any(b.attention.attn_dropout > 0 for b in self.blocks)
        blocked = t > self.block_size and not dropout
        key = (t, window, device, self.block_size if blocked else None)
        if self._bias_key != key:
            self._bias = None  # free the old one before building the new one
            if blocked:
                self._bias = AlibiTemplate(self.slopes, t, self.block_size, window, device)
            else:
                self._bias = alibi_bias(self.slopes, t, window, device)[None]
            self._bias_key = key
        return self._bias

    def forward(self, x: torch.Tensor, window: int | None = None) -> torch.Tensor:
        """x [B, T, H] → [B, T, H]. `window` restricts each query to its last `window` keys —
        exactly what a rolling KV cache of that size computes."""
        bias = self.attention_bias(x.shape[1], window, x.device)
        recompute = self.checkpointing and torch.is_grad_enabled()
        for block in self.blocks:
            x = checkpoint(block, x, bias, use_reentrant=False) if recompute else block(x, bias)
        return self.ln_f(x)

    def step(self, x: torch.Tensor, cache, slot: int, bias: torch.Tensor) -> torch.Tensor:
        for block, k_cache, v_cache in zip(self.blocks, cache.k, cache.v, strict=True):
            x = block.step(x, k_cache, v_cache, slot, bias)
        return self.ln_f(x)
