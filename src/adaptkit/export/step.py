"""One robot's policy step as a TorchScript/ONNX-able module: raw observation in, raw action out.

`Vintix.step` is not scriptable (keyword-only arguments, a Python KV-cache object, LoRA forward
hooks, per-group dicts). `PolicyStep` takes one group's modules out of a loaded model and runs the
same arithmetic with all state explicit: the KV cache, the previous action, the episode step and
the token position. The cache is a fixed-size ring buffer written at slot `position % window`:
exact with ALiBi, whose bias depends only on the distance between tokens, so the valid slots and
their distances follow from `position` alone (no slot-time table).

`StatefulPolicy` wraps it for TorchScript: the state lives in buffers, `reset()` forgets the
context, `start_episode()` marks an episode start (the context is kept, as in evaluation), and
`act(obs, reward)` returns the action.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from adaptkit.export.inputs import INPUT_BOUND, REFUSED_TAIL
from adaptkit.model.vintix import Vintix

_PARTS = ("obs", "act", "rew")


class _Linear(nn.Module):
    """A trunk Linear (its weights, not the module: the module carries the LoRA forward hooks,
    which TorchScript cannot compile) plus the group's LoRA update, computed as the hook does
    (unmerged: the same arithmetic, so the same actions)."""

    def __init__(self, linear: nn.Linear, lora: nn.Module | None) -> None:
        super().__init__()
        empty = torch.zeros(0, dtype=linear.weight.dtype)
        self.weight = linear.weight
        self.has_bias = linear.bias is not None
        self.bias = linear.bias if linear.bias is not None else nn.Parameter(empty)
        self.has_lora = lora is not None
        self.lora_a = lora.lora_A if lora is not None else nn.Parameter(empty)
        self.lora_b = lora.lora_B if lora is not None else nn.Parameter(empty)
        self.lora_scale = float(lora.scale) if lora is not None else 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight, self.bias if self.has_bias else None)
        if self.has_lora:
            delta = (x @ self.lora_a.t().to(x.dtype)) @ self.lora_b.t().to(x.dtype)
            out = out + (delta * self.lora_scale).to(out.dtype)
        return out


class _Block(nn.Module):
    """adaptkit.model.attention.Block.step on CPU (two GEMVs and an fp32 softmax)."""

    def __init__(self, block: nn.Module, lora: nn.Module | None, index: int) -> None:
        super().__init__()
        att = block.attention

        def lin(target: str) -> _Linear:
            key = f"b{index}_{target.replace('.', '_')}"
            return _Linear(block.get_submodule(target), lora.layers[key] if lora else None)

        self.n_heads, self.head_dim = att.n_heads, att.head_dim
        self.scale = float(self.head_dim) ** -0.5
        self.norm1 = block.norm1
        self.has_norm2 = block.norm2 is not None
        self.norm2 = block.norm2 if block.norm2 is not None else nn.Identity()
        self.parallel = bool(block.parallel)
        self.has_qk_norm = att.q_norm is not None
        self.q_norm = att.q_norm if att.q_norm is not None else nn.Identity()
        self.k_norm = att.k_norm if att.k_norm is not None else nn.Identity()
        self.in_proj = lin("attention.in_proj")
        self.out_proj = lin("attention.out_proj")
        self.fc = lin("mlp.fc")
        self.proj = lin("mlp.proj")

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))

    def forward(
        self, x: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, slot: torch.Tensor,
        bias: torch.Tensor, in_place: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        """x [B, 1, H]; caches [B, heads, W, hd] → (x, k_cache, v_cache) with the token written."""
        b = x.shape[0]
        n1 = self.norm1(x)
        qkv = self.in_proj(n1).view(b, 1, 3, self.n_heads, self.head_dim)
        q, k, v = qkv.unbind(dim=2)
        if self.has_qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, heads, 1, hd]
        k, v = k.to(k_cache.dtype), v.to(v_cache.dtype)
        if in_place:  # TorchScript: write one slot of the buffers
            k_cache[:, :, int(slot)] = k[:, :, 0]
            v_cache[:, :, int(slot)] = v[:, :, 0]
        else:  # ONNX: a new cache tensor per step (its graph has no in-place writes)
            k_cache = k_cache.index_copy(2, slot.view(1), k)
            v_cache = v_cache.index_copy(2, slot.view(1), v)
        q = q.to(k_cache.dtype)
        scores = torch.matmul(q, k_cache.transpose(-1, -2)).float()
        scores = scores * self.scale + bias
        y = torch.matmul(torch.softmax(scores, dim=-1).to(v_cache.dtype), v_cache)
        att = self.out_proj(
            y.to(x.dtype).transpose(1, 2).reshape(b, 1, self.n_heads * self.head_dim)
        )
        if self.parallel:
            n2 = self.norm2(x) if self.has_norm2 else n1
            return x + att + self._mlp(n2), k_cache, v_cache
        x = x + att
        return x + self._mlp(self.norm2(x)), k_cache, v_cache


class StepOutput(NamedTuple):
    action: torch.Tensor  # [B, act_dim] raw (joint units the env takes)
    prev_action: torch.Tensor  # [B, act_dim] the model's own output, fed back next step
    step_index: torch.Tensor  # [B] int64 episode step of the next token
    position: torch.Tensor  # [] int64 tokens seen, next token's ring-buffer time
    k_cache: torch.Tensor  # [layers, B, heads, window, head_dim]
    v_cache: torch.Tensor


class PolicyStep(nn.Module):
    """One group of a Vintix model as a pure function of (input, state) → (action, state)."""

    def __init__(
        self,
        model: Vintix,
        group: str,
        *,
        window: int,
        obs_mean: torch.Tensor | None,
        obs_div: torch.Tensor | None,
        act_mean: torch.Tensor | None,
        act_std: torch.Tensor | None,
        reward_scale: float,
        in_place: bool = True,
    ) -> None:
        super().__init__()
        c = model.config
        e = model.encoder
        lora = model.lora[group] if group in model.lora else None  # noqa: SIM401 (no .get)
        self.obs_encoder = e.obs_encoders[group]
        self.act_encoder = e.acs_encoders[group]
        self.rew_encoder = e.rews_encoders[group].layers
        self.act_padding = e.prev_acs_padding
        self.rew_padding = e.prev_rew_padding
        self.blocks = nn.ModuleList(
            _Block(b, lora, i) for i, b in enumerate(model.transformer.blocks)
        )
        self.ln_f = model.transformer.ln_f
        self.decoder = model.head.acs_decoders[group]
        self.register_buffer("slopes", model.transformer.slopes.detach().clone().float())
        self.order = [_PARTS.index(p) for p in c.order]
        self.window = int(window)
        self.n_layers, self.n_heads, self.head_dim = (
            len(self.blocks),
            c.transformer_heads,
            c.head_dim,
        )
        dims = model.groups[group]
        self.obs_dim, self.act_dim = dims.obs_dim, dims.act_dim
        self.reward_scale = float(reward_scale)
        self.in_place = in_place
        dtype = e.prev_acs_padding.dtype
        self.norm_obs = obs_mean is not None
        self.norm_acs = act_mean is not None
        empty = torch.zeros(0, dtype=dtype)
        self.register_buffer("obs_mean", obs_mean.to(dtype) if obs_mean is not None else empty)
        self.register_buffer("obs_div", obs_div.to(dtype) if obs_div is not None else empty)
        self.register_buffer("act_mean", act_mean.to(dtype) if act_mean is not None else empty)
        self.register_buffer("act_std", act_std.to(dtype) if act_std is not None else empty)

    def _bias(self, position: torch.Tensor) -> torch.Tensor:
        """[1, heads, 1, W] ALiBi bias of the token at `position` against every ring slot."""
        slots = torch.arange(self.window, dtype=torch.long, device=position.device)
        dist = torch.remainder(position - slots, self.window)  # how long ago the slot was written
        alibi = -self.slopes[:, None] * dist.to(torch.float32)[None, :]
        bias = alibi.masked_fill((dist > position)[None, :], float("-inf"))  # never written
        return bias[None, :, None, :]

    def _token(
        self, obs: torch.Tensor, prev_act: torch.Tensor, reward: torch.Tensor, step: torch.Tensor
    ) -> torch.Tensor:
        """Vintix's Encoder.embed for one timestep: [B, 1, H]."""
        dtype = self.act_padding.dtype
        obs_emb = self.obs_encoder(obs.to(dtype))
        act_emb = self.act_encoder(prev_act.to(dtype))
        rew_emb = self.rew_encoder(reward.to(dtype).unsqueeze(-1))
        out = obs_emb.dtype
        start = (step == 0).unsqueeze(-1)
        act_emb = torch.where(start, self.act_padding.to(out), act_emb.to(out))
        rew_emb = torch.where(start, self.rew_padding.to(out), rew_emb.to(out))
        parts = [obs_emb, act_emb, rew_emb]
        return torch.cat([parts[i] for i in self.order], dim=-1)

    def forward(
        self,
        obs: torch.Tensor,
        reward: torch.Tensor,
        prev_action: torch.Tensor,
        step_index: torch.Tensor,
        position: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """obs [B, obs_dim] raw; reward [B] raw, the reward of the previous action (ignored at an
        episode start, step_index 0); the rest is the state this returned last time (zeros and
        position 0 for a fresh context). Returns StepOutput's fields, in its order."""
        dtype = self.act_padding.dtype
        o = obs.to(dtype)
        if self.norm_obs:
            o = (o - self.obs_mean) / self.obs_div
        r = reward.to(dtype) * self.reward_scale
        x = self._token(o[:, None], prev_action[:, None], r[:, None], step_index[:, None])
        slot = torch.remainder(position, self.window)
        bias = self._bias(position)
        ks: list[torch.Tensor] = []
        vs: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            x, k, v = block(x, k_cache[i], v_cache[i], slot, bias, self.in_place)
            ks.append(k)
            vs.append(v)
        a = self.decoder(self.ln_f(x))[:, 0]
        action = a * self.act_std + self.act_mean if self.norm_acs else a
        if not self.in_place:
            k_cache, v_cache = torch.stack(ks), torch.stack(vs)
        return action.float(), a, step_index + 1, position + 1, k_cache, v_cache

    def initial_state(self, batch: int = 1) -> dict[str, torch.Tensor]:
        """The state of a fresh context for `batch` envs (what ONNX callers start from)."""
        dtype = self.act_padding.dtype
        cache = (self.n_layers, batch, self.n_heads, self.window, self.head_dim)
        return {
            "prev_action": torch.zeros(batch, self.act_dim, dtype=dtype),
            "step_index": torch.zeros(batch, dtype=torch.long),
            "position": torch.zeros((), dtype=torch.long),
            "k_cache": torch.zeros(cache, dtype=dtype),
            "v_cache": torch.zeros(cache, dtype=dtype),
        }


class StatefulPolicy(nn.Module):
    """The TorchScript policy: `reset(batch)`, `start_episode()`, `act(obs, reward)`. A call
    with another batch size than the state's starts a fresh context of that size. An input
    that is NaN/inf or beyond ±INPUT_BOUND (adaptkit.export.inputs) is refused with a
    ValueError naming its index before anything of the state changes: the file alone is as
    safe as adaptkit's own runtime."""

    def __init__(self, step: PolicyStep) -> None:
        super().__init__()
        self.step = step
        self.obs_dim, self.act_dim = step.obs_dim, step.act_dim
        self.bound = float(INPUT_BOUND)
        self.refused_tail = REFUSED_TAIL  # the wording of adaptkit.export.inputs.refusal
        # saved empty (a batch of 0), so the file holds no cache: act() sizes it on first use
        for name, t in step.initial_state(0).items():
            self.register_buffer(name, t)

    @torch.jit.export
    def reset(self, batch: int = 1) -> None:
        """Forget the context: the next act() starts a new context and a new episode."""
        if batch < 1:
            raise ValueError(f"reset: batch must be >= 1, got {batch}")
        s = self.step
        dtype = self.prev_action.dtype
        shape = [s.n_layers, batch, s.n_heads, s.window, s.head_dim]
        self.prev_action = torch.zeros(batch, s.act_dim, dtype=dtype)
        self.step_index = torch.zeros(batch, dtype=torch.long)
        self.position = torch.zeros((), dtype=torch.long)
        # one allocation, two views: TorchScript merges two identical torch.zeros calls into one
        # tensor (common-subexpression elimination), which would make K and V the same buffer
        kv = torch.zeros([2] + shape, dtype=dtype)  # noqa: RUF005 (TorchScript has no [*x])
        self.k_cache = kv[0]
        self.v_cache = kv[1]

    @torch.jit.export
    def start_episode(self, mask: torch.Tensor | None = None) -> None:
        """The next act() begins a new episode (of the envs in `mask`, else all), in the same
        context: in-context learning reads the earlier episodes."""
        if mask is None:
            self.step_index.zero_()
        else:
            n = self.step_index.shape[0]
            if mask.dim() > 1 or (mask.dim() == 1 and mask.shape[0] != n):
                raise ValueError(
                    f"start_episode: mask must be [{n}] (one per robot of the last act), got "
                    f"shape {mask.shape}"
                )
            self.step_index.masked_fill_(mask.to(torch.bool), 0)

    def _check(self, name: str, x: torch.Tensor) -> None:
        bad = ~(x.abs() <= self.bound)  # one comparison covers NaN too
        if bool(bad.any()):
            index = torch.nonzero(bad)[0]
            value = float(x.reshape(-1)[int(torch.nonzero(bad.reshape(-1))[0])])
            what = "out of range" if math.isfinite(value) else str(value)
            where = name
            if index.numel() > 0:
                where = name + "[" + ", ".join([str(int(i)) for i in index]) + "]"
            raise ValueError(f"act: {where} is {what}" + self.refused_tail)

    @torch.jit.export
    def act(self, obs: torch.Tensor, reward: torch.Tensor) -> torch.Tensor:
        """obs [obs_dim] or [B, obs_dim]; reward of the previous action ([] or [B]) → action."""
        single = obs.dim() == 1
        o = obs.unsqueeze(0) if single else obs
        if o.dim() != 2 or o.shape[1] != self.obs_dim or o.shape[0] < 1:
            raise ValueError(
                f"act: obs must be [{self.obs_dim}] or [B, {self.obs_dim}] with B >= 1, got "
                f"shape {obs.shape}"
            )
        if reward.dim() > 1 or (reward.numel() != 1 and reward.numel() != o.shape[0]):
            raise ValueError(
                f"act: reward must be a number or [{o.shape[0]}] (one per row of obs), got "
                f"shape {reward.shape}"
            )
        self._check("obs", obs)
        self._check("reward", reward)
        if self.prev_action.shape[0] != o.shape[0]:  # first call, or another batch size
            self.reset(o.shape[0])
        r = reward.reshape(-1).to(torch.float32).expand(o.shape[0])
        with torch.no_grad():
            out = self.step(
                o, r, self.prev_action, self.step_index, self.position, self.k_cache, self.v_cache
            )
        self.prev_action = out[1]
        self.step_index = out[2]
        self.position = out[3]
        return out[0][0] if single else out[0]

    def forward(self, obs: torch.Tensor, reward: torch.Tensor) -> torch.Tensor:
        return self.act(obs, reward)
