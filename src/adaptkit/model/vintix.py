"""Vintix: per-group encoders → shared causal transformer → per-group action decoders.

Module names follow the released state-dict keys (SPEC.md), so a released model.pth loads with
strict=True. Each timestep is one token concat(obs_emb, prev_act_emb, prev_rew_emb) (in the
configured order); token t holds (o_t, a_{t-1}, r_{t-1}) and predicts a_t.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from adaptkit.errors import AdaptkitError
from adaptkit.model.attention import Transformer
from adaptkit.model.cache import KVCache
from adaptkit.model.config import TOKEN_ORDERS, GroupDims, ModelConfig
from adaptkit.model.lora import GroupLoRA, attach_hooks

Groups = str | Sequence[str]  # one group for the batch, or one per batch row


class _EmbeddingMLP(nn.Module):
    """Linear, LeakyReLU, LayerNorm, Linear, LeakyReLU, LayerNorm (keys layers.{0,2,3,5})."""

    def __init__(self, in_dim: int, emb_dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_dim, emb_dim),
            nn.LeakyReLU(),
            nn.LayerNorm(emb_dim),
            nn.Linear(emb_dim, emb_dim),
            nn.LeakyReLU(),
            nn.LayerNorm(emb_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class _RewardEncoder(nn.Module):
    """Linear(1 → E_r), LeakyReLU (key layers.0)."""

    def __init__(self, emb_dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(1, emb_dim), nn.LeakyReLU())

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return self.layers(r.unsqueeze(-1))


class _ActionDecoder(nn.Module):
    """3 × [Linear(H→H), LeakyReLU] → Linear(H→act_dim) (keys layers.{0,2,4,6})."""

    def __init__(self, hidden: int, act_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(3):
            layers += [nn.Linear(hidden, hidden), nn.LeakyReLU()]
        layers.append(nn.Linear(hidden, act_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.layers(h)


def _check_group_name(name: str) -> None:
    if not isinstance(name, str) or not name or "." in name or hasattr(nn.Module, name):
        raise AdaptkitError(
            f"group name {name!r}: expected a non-empty name without '.' that is not a torch "
            "Module attribute"
        )


def _split_by_group(groups: Sequence[str], device: torch.device) -> dict[str, torch.Tensor]:
    """Batch row indices per unique group (a loop over groups, never over timesteps)."""
    out: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        out.setdefault(g, []).append(i)
    return {g: torch.tensor(idx, device=device) for g, idx in out.items()}


class Encoder(nn.Module):
    def __init__(self, config: ModelConfig, groups: Mapping[str, GroupDims]) -> None:
        super().__init__()
        self.config = config
        self.obs_encoders = nn.ModuleDict()
        self.acs_encoders = nn.ModuleDict()
        self.rews_encoders = nn.ModuleDict()
        # Shared by all groups: stand-ins for a_{t-1}, r_{t-1} at an episode start (step_num 0).
        self.prev_acs_padding = nn.Parameter(torch.randn(1, config.action_emb_dim) * 0.02)
        self.prev_rew_padding = nn.Parameter(torch.randn(1, config.reward_emb_dim) * 0.02)
        for name, dims in groups.items():
            self.add_group(name, dims)

    def add_group(self, name: str, dims: GroupDims) -> None:
        c = self.config
        self.obs_encoders[name] = _EmbeddingMLP(dims.obs_dim, c.observation_emb_dim)
        self.acs_encoders[name] = _EmbeddingMLP(dims.act_dim, c.action_emb_dim)
        self.rews_encoders[name] = _RewardEncoder(c.reward_emb_dim)

    def remove_group(self, name: str) -> None:
        for d in (self.obs_encoders, self.acs_encoders, self.rews_encoders):
            del d[name]

    def embed(
        self,
        group: str,
        obs: torch.Tensor,
        prev_act: torch.Tensor,
        prev_rew: torch.Tensor,
        step_num: torch.Tensor,
    ) -> torch.Tensor:
        """One group: [B, T, do], [B, T, da], [B, T], [B, T] → tokens [B, T, H]."""
        dtype = self.prev_acs_padding.dtype
        obs_emb = self.obs_encoders[group](obs.to(dtype))
        act_emb = self.acs_encoders[group](prev_act.to(dtype))
        rew_emb = self.rews_encoders[group](prev_rew.to(dtype))
        out_dtype = obs_emb.dtype  # may be lower precision under autocast
        start = (step_num == 0).unsqueeze(-1)
        act_emb = torch.where(start, self.prev_acs_padding.to(out_dtype), act_emb.to(out_dtype))
        rew_emb = torch.where(start, self.prev_rew_padding.to(out_dtype), rew_emb.to(out_dtype))
        parts = {"obs": obs_emb, "act": act_emb, "rew": rew_emb}
        return torch.cat([parts[p] for p in self.config.order], dim=-1)

    def forward(
        self,
        groups: Groups,
        obs: torch.Tensor,
        prev_act: torch.Tensor,
        prev_rew: torch.Tensor,
        step_num: torch.Tensor,
        dims: Mapping[str, GroupDims],
    ) -> torch.Tensor:
        if isinstance(groups, str):
            return self.embed(groups, obs, prev_act, prev_rew, step_num)
        # Mixed batch: inputs are zero-padded to the widest group; each group reads its slice.
        b, t = obs.shape[:2]
        out = None
        for g, idx in _split_by_group(groups, obs.device).items():
            d = dims[g]
            emb = self.embed(
                g,
                obs[idx, :, : d.obs_dim],
                prev_act[idx, :, : d.act_dim],
                prev_rew[idx],
                step_num[idx],
            )
            if out is None:
                out = emb.new_zeros(b, t, emb.shape[-1])
            out = out.index_copy(0, idx, emb)
        return out


class Head(nn.Module):
    def __init__(self, config: ModelConfig, groups: Mapping[str, GroupDims]) -> None:
        super().__init__()
        self.hidden = config.hidden_dim
        self.acs_decoders = nn.ModuleDict()
        for name, dims in groups.items():
            self.add_group(name, dims)

    def add_group(self, name: str, dims: GroupDims) -> None:
        self.acs_decoders[name] = _ActionDecoder(self.hidden, dims.act_dim)

    def remove_group(self, name: str) -> None:
        del self.acs_decoders[name]

    def forward(
        self, groups: Groups, h: torch.Tensor, dims: Mapping[str, GroupDims]
    ) -> torch.Tensor:
        if isinstance(groups, str):
            return self.acs_decoders[groups](h)
        width = max(dims[g].act_dim for g in set(groups))
        out = None
        for g, idx in _split_by_group(groups, h.device).items():
            pred = self.acs_decoders[g](h[idx])
            if out is None:
                out = pred.new_zeros(*h.shape[:-1], width)
            pad = width - pred.shape[-1]
            out = out.index_copy(0, idx, nn.functional.pad(pred, (0, pad)) if pad else pred)
        return out


class Vintix(nn.Module):
    """The whole model. `groups` maps group name → GroupDims (obs/act widths)."""

    def __init__(self, config: ModelConfig, groups: Mapping[str, GroupDims]) -> None:
        super().__init__()
        for name in groups:
            _check_group_name(name)
        self.config = config
        self._groups: dict[str, GroupDims] = dict(groups)
        self.encoder = Encoder(config, groups)
        self.transformer = Transformer(config)
        self.head = Head(config, groups)
        # group → its LoRA update of the trunk (adaptkit.model.lora); empty: no state-dict keys
        self.lora = nn.ModuleDict()
        self._lora_active: list[tuple[str, torch.Tensor | None]] | None = None

    # -- groups ----------------------------------------------------------------------------
    @property
    def groups(self) -> dict[str, GroupDims]:
        return dict(self._groups)

    def set_token_order(self, order: str) -> None:
        """Concatenate the token parts in `order` from now on (one of TOKEN_ORDERS). The weights
        are the same for both orders, so only the config changes."""
        if order not in TOKEN_ORDERS:
            raise AdaptkitError(f"token order: expected one of {list(TOKEN_ORDERS)}, got {order!r}")
        self.config.token_order = order
        self.encoder.config = self.config  # the encoder reads the order (normally the same object)

    def add_group_modules(self, name: str, dims: GroupDims) -> None:
        """Create only the new group's modules (never re-initialise others — the HPT bug), on the
        model's device and dtype. Metadata is `adaptkit.adapt.surgery.add_group`'s job."""
        _check_group_name(name)
        if name in self._groups:
            raise AdaptkitError(f"group {name!r} already exists in the model")
        ref = self.encoder.prev_acs_padding
        self.encoder.add_group(name, dims)
        self.head.add_group(name, dims)
        for module in self.group_modules(name):
            module.to(device=ref.device, dtype=ref.dtype)
        self._groups[name] = dims

    def remove_group(self, name: str) -> None:
        self.encoder.remove_group(name)
        self.head.remove_group(name)
        if name in self.lora:
            del self.lora[name]
        del self._groups[name]

    def add_lora(self, name: str, rank: int, alpha: float) -> None:
        """Give group `name` a LoRA update of the trunk that only its tokens see
        (adaptkit.model.lora), on the model's device and dtype."""
        if name not in self._groups:
            raise AdaptkitError(f"LoRA: model has no group {name!r}")
        if name in self.lora:
            raise AdaptkitError(f"LoRA: group {name!r} already has one")
        ref = self.encoder.prev_acs_padding
        self.lora[name] = GroupLoRA(self.transformer, rank, alpha).to(
            device=ref.device, dtype=ref.dtype
        )
        attach_hooks(self)

    def group_modules(self, name: str) -> list[nn.Module]:
        """The group's modules, in the order of `group_prefixes` (LoRA last, when it has one)."""
        e = self.encoder
        mods = [
            e.obs_encoders[name],
            e.acs_encoders[name],
            e.rews_encoders[name],
            self.head.acs_decoders[name],
        ]
        return mods + ([self.lora[name]] if name in self.lora else [])

    @staticmethod
    def group_prefixes(name: str) -> tuple[str, ...]:
        """State-dict key prefixes owned by one group (its LoRA weights included)."""
        return (
            f"encoder.obs_encoders.{name}.",
            f"encoder.acs_encoders.{name}.",
            f"encoder.rews_encoders.{name}.",
            f"head.acs_decoders.{name}.",
            f"lora.{name}.",
        )

    def _mark_lora(self, groups: Groups, device: torch.device) -> None:
        """Tell the LoRA hooks which rows of this forward belong to a group with LoRA."""
        if not len(self.lora):
            self._lora_active = None
        elif isinstance(groups, str):
            self._lora_active = [(groups, None)] if groups in self.lora else None
        else:
            rows = _split_by_group(groups, device).items()
            self._lora_active = [(g, idx) for g, idx in rows if g in self.lora] or None

    def _check(self, groups: Groups, obs: torch.Tensor, prev_act: torch.Tensor) -> None:
        names = [groups] if isinstance(groups, str) else sorted(set(groups))
        for g in names:
            if g not in self._groups:
                raise AdaptkitError(f"model has no group {g!r} (groups: {sorted(self._groups)})")
        if isinstance(groups, str):
            d = self._groups[groups]
            if obs.shape[-1] != d.obs_dim or prev_act.shape[-1] != d.act_dim:
                raise AdaptkitError(
                    f"group {groups!r} expects obs_dim={d.obs_dim}, act_dim={d.act_dim}; got "
                    f"obs {tuple(obs.shape)}, prev_act {tuple(prev_act.shape)}"
                )
        else:
            if len(groups) != obs.shape[0]:
                raise AdaptkitError(f"{len(groups)} group names for a batch of {obs.shape[0]}")
            need_o = max(self._groups[g].obs_dim for g in names)
            need_a = max(self._groups[g].act_dim for g in names)
            if obs.shape[-1] < need_o or prev_act.shape[-1] < need_a:
                raise AdaptkitError(
                    f"mixed batch: obs/prev_act must be padded to at least {need_o}/{need_a} "
                    f"features, got {obs.shape[-1]}/{prev_act.shape[-1]}"
                )

    # -- training forward ------------------------------------------------------------------
    def forward(
        self,
        group: Groups,
        obs: torch.Tensor,
        prev_act: torch.Tensor,
        prev_rew: torch.Tensor,
        step_num: torch.Tensor,
        *,
        window: int | None = None,
    ) -> torch.Tensor:
        """[B,T,do], [B,T,da], [B,T], [B,T] → predicted actions [B,T,da].

        `group` may be a list (one per row) for a mixed batch: inputs zero-padded to the widest
        group, output padded to the widest action (see `forward_mixed`). `window` limits
        attention to the last `window` tokens (the semantics of a rolling KV cache)."""
        self._check(group, obs, prev_act)
        x = self.encoder(group, obs, prev_act, prev_rew, step_num, self._groups)
        self._mark_lora(group, obs.device)
        h = self.transformer(x, window=window)
        return self.head(group, h, self._groups)

    def forward_mixed(
        self,
        groups: Sequence[str],
        obs: torch.Tensor,
        prev_act: torch.Tensor,
        prev_rew: torch.Tensor,
        step_num: torch.Tensor,
    ) -> torch.Tensor:
        """Mixed-group batch (pretraining): `groups[b]` names row b's group."""
        return self.forward(list(groups), obs, prev_act, prev_rew, step_num)

    # -- incremental decoding --------------------------------------------------------------
    def new_cache(
        self, batch_size: int, window: int | None = None, dtype: torch.dtype | None = None
    ) -> KVCache:
        """A KV cache for `batch_size` envs (window defaults to context_len)."""
        ref = self.encoder.prev_acs_padding
        c = self.config
        return KVCache(
            c.transformer_depth,
            batch_size,
            c.transformer_heads,
            c.head_dim,
            window or c.context_len,
            device=ref.device,
            dtype=dtype or ref.dtype,
        )

    @torch.no_grad()
    def step(
        self,
        group: Groups,
        cache: KVCache,
        obs: torch.Tensor,
        prev_act: torch.Tensor,
        prev_rew: torch.Tensor,
        step_num: torch.Tensor,
    ) -> torch.Tensor:
        """One timestep for B envs: [B,do], [B,da], [B], [B] → actions [B,da]. One forward of B
        tokens against the cache; equals `forward(..., window=cache.window)` over each env's
        history since its last reset."""
        if obs.shape[0] != cache.batch_size:
            raise AdaptkitError(f"step got {obs.shape[0]} envs, the cache holds {cache.batch_size}")
        self._check(group, obs, prev_act)
        x = self.encoder(
            group,
            obs[:, None],
            prev_act[:, None],
            prev_rew[:, None],
            step_num[:, None],
            self._groups,
        )
        self._mark_lora(group, obs.device)
        slot, bias = cache.advance(self.transformer.slopes)
        h = self.transformer.step(x, cache, slot, bias)
        return self.head(group, h, self._groups)[:, 0]


def action_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error over all (unmasked) elements, in fp32. `mask` broadcasts to pred:
    [B,T] (positions) or [B,T,da] (e.g. the padded action dims of a mixed batch)."""
    se = (pred.float() - target.float()).pow(2)
    if mask is None:
        return se.mean()
    m = mask.to(se.dtype)
    if m.dim() == se.dim() - 1:
        m = m.unsqueeze(-1)
    m = m.expand_as(se)
    return (se * m).sum() / m.sum().clamp(min=1.0)
