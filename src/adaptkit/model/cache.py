"""Batched KV cache for stepping many envs at once: a ring buffer shared by all envs."""

from __future__ import annotations

import torch


class KVCache:
    """K/V of the last `window` tokens of `batch_size` envs, for every layer.

    All envs advance together, so one write slot (time % window) serves the whole batch; the
    oldest token rolls out when the buffer is full, which is exact with ALiBi because the bias
    only depends on the distance (now − token time). Per env, `start` is the time of its first
    valid token: `reset` moves it to "now", so envs can hold contexts of different lengths.
    """

    def __init__(
        self,
        n_layers: int,
        batch_size: int,
        n_heads: int,
        head_dim: int,
        window: int,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if window < 1 or batch_size < 1:
            raise ValueError("window and batch_size must be >= 1")
        shape = (batch_size, n_heads, window, head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layers)]
        self.batch_size = batch_size
        self.window = window
        self.t = 0  # time of the next token
        self.slot_time = torch.full((window,), -1, dtype=torch.long, device=device)
        self.start = torch.zeros(batch_size, dtype=torch.long, device=device)

    @property
    def device(self) -> torch.device:
        return self.slot_time.device

    def reset(self, mask: torch.Tensor | None = None) -> None:
        """Forget the context of the envs where `mask` is True (all envs when None)."""
        if mask is None:
            self.start.fill_(self.t)
            return
        mask = torch.as_tensor(mask, dtype=torch.bool, device=self.device)
        if mask.shape != (self.batch_size,):
            raise ValueError(
                f"reset mask must have shape ({self.batch_size},), got {tuple(mask.shape)}"
            )
        self.start.masked_fill_(mask, self.t)

    def lengths(self) -> torch.Tensor:
        """Number of tokens each env currently attends to (before the next step)."""
        return (self.t - self.start).clamp(max=self.window)

    def advance(self, slopes: torch.Tensor) -> tuple[int, torch.Tensor]:
        """Claim the next token's slot; return it and the [B, heads, 1, window] attention bias."""
        slot = self.t % self.window
        self.slot_time[slot] = self.t
        dist = (self.t - self.slot_time).to(torch.float32)  # garbage for empty slots: masked below
        alibi = -slopes.to(self.device)[:, None] * dist[None, :]  # [heads, W]
        valid = self.slot_time[None, :] >= self.start[:, None]  # [B, W]; empty slots are -1
        bias = alibi[None, :, None, :].masked_fill(~valid[:, None, None, :], float("-inf"))
        self.t += 1
        return slot, bias
