"""Vintix model: key structure, ALiBi attention, mixed batches, KV-cache decoding."""

from __future__ import annotations

import itertools

import pytest
import torch
from helpers_model import TINY_GROUPS, random_batch, tiny_config, tiny_model

from adaptkit.errors import AdaptkitError
from adaptkit.model import GroupDims, ModelConfig, Vintix, action_loss, alibi_slopes


def spec_keys(depth: int, groups: list[str]) -> set[str]:
    """The state-dict keys SPEC.md lists for the released layout."""
    keys = {"encoder.prev_acs_padding", "encoder.prev_rew_padding"}
    wb = ("weight", "bias")
    for g in groups:
        for enc in ("obs_encoders", "acs_encoders"):
            keys |= {f"encoder.{enc}.{g}.layers.{i}.{p}" for i in (0, 2, 3, 5) for p in wb}
        keys |= {f"encoder.rews_encoders.{g}.layers.0.{p}" for p in wb}
        keys |= {f"head.acs_decoders.{g}.layers.{i}.{p}" for i in (0, 2, 4, 6) for p in wb}
    for i in range(depth):
        for mod in ("norm1", "norm2", "attention.in_proj", "attention.out_proj"):
            keys |= {f"transformer.blocks.{i}.{mod}.{p}" for p in wb}
        for mod in ("attention.q_norm", "attention.k_norm", "mlp.fc", "mlp.proj"):
            keys |= {f"transformer.blocks.{i}.{mod}.{p}" for p in wb}
    keys |= {"transformer.ln_f.weight", "transformer.ln_f.bias"}
    return keys


def test_state_dict_keys_and_shapes_match_spec():
    # Released structure (1024 = 511+511+2 split, QK-norm, biases) at a tiny width.
    cfg = ModelConfig.released(
        observation_emb_dim=7, action_emb_dim=7, reward_emb_dim=2, transformer_depth=2,
        transformer_heads=4, intermediate_size=32, context_len=16,
    )  # fmt: skip
    groups = {"quadruped_locomotion": GroupDims(45, 12), "meta_world": GroupDims(39, 4)}
    sd = Vintix(cfg, groups).state_dict()
    assert set(sd) == spec_keys(2, list(groups))
    h, hd = 16, 4
    assert sd["transformer.blocks.0.attention.in_proj.weight"].shape == (3 * h, h)
    assert sd["transformer.blocks.1.attention.q_norm.weight"].shape == (hd,)
    assert sd["transformer.blocks.0.mlp.fc.weight"].shape == (32, h)
    assert sd["encoder.obs_encoders.meta_world.layers.0.weight"].shape == (7, 39)
    assert sd["encoder.acs_encoders.meta_world.layers.3.weight"].shape == (7, 7)
    assert sd["encoder.rews_encoders.meta_world.layers.0.weight"].shape == (2, 1)
    assert sd["head.acs_decoders.meta_world.layers.6.weight"].shape == (4, h)
    assert sd["encoder.prev_acs_padding"].shape == (1, 7)
    assert sd["encoder.prev_rew_padding"].shape == (1, 2)
    assert "transformer.slopes" not in sd  # ALiBi slopes are a buffer outside the state dict


def test_parameter_counts_match_reference_figures():
    fork = Vintix(ModelConfig.fork(), {"quadruped_locomotion": GroupDims(33, 12)})
    assert sum(p.numel() for p in fork.parameters()) == 1_231_706  # the fork's reported count
    with torch.device("meta"):  # no memory: just count the released transformer
        released = Vintix(ModelConfig.released(), {})
    n = sum(p.numel() for p in released.transformer.parameters())
    assert 251_000_000 < n < 253_000_000


def test_config_round_trip_and_validation():
    raw = {**tiny_config().to_dict(), "lr": 1e-4, "dataset_config_paths": ["a.yaml"]}
    cfg = ModelConfig.from_dict(raw)
    assert cfg.extra == {"lr": 1e-4, "dataset_config_paths": ["a.yaml"]}
    assert cfg.to_dict() == raw
    assert ModelConfig().hidden_dim == 128
    with pytest.raises(AdaptkitError, match="hidden_dim"):
        ModelConfig.from_dict({**raw, "hidden_dim": 99})
    with pytest.raises(AdaptkitError, match="token_order"):
        tiny_config(token_order="rew,obs,act")


def test_alibi_slopes():
    assert alibi_slopes(4).tolist() == [2**-2, 2**-4, 2**-6, 2**-8]
    assert alibi_slopes(8)[0].item() == 2**-1
    assert len(alibi_slopes(12)) == 12


def test_causal_and_episode_start_padding():
    model = tiny_model()
    dims = TINY_GROUPS["arm"]
    x = random_batch(dims, b=2, t=10, episode_len=4)
    args = [x["obs"], x["prev_act"], x["prev_rew"], x["step_num"]]
    out = model("arm", *args)
    assert out.shape == (2, 10, 3)
    future = [a.clone() for a in args]
    future[0][:, 6:] += 1.0
    assert torch.equal(model("arm", *future)[:, :6], out[:, :6])  # causal
    # Position 4 starts an episode: its prev action/reward are replaced by the paddings.
    changed = [a.clone() for a in args]
    changed[1][:, 4] += 5.0
    changed[2][:, 4] += 5.0
    assert torch.allclose(model("arm", *changed)[:, 4], out[:, 4])
    changed[1][:, 5] += 5.0
    assert not torch.allclose(model("arm", *changed)[:, 5], out[:, 5])


def test_token_order_is_part_of_the_model():
    torch.manual_seed(0)
    model = Vintix(tiny_config(token_order="act,rew,obs"), TINY_GROUPS)
    x = random_batch(TINY_GROUPS["arm"], b=1, t=3)
    tok = model.encoder.embed("arm", x["obs"], x["prev_act"], x["prev_rew"], x["step_num"])
    act = model.encoder.prev_acs_padding[0]  # step 0 → padding, which goes first in this order
    assert torch.equal(tok[0, 0, : act.numel()], act)


def test_mixed_group_batch_equals_per_group():
    model = tiny_model()
    q, a = TINY_GROUPS["quadruped_locomotion"], TINY_GROUPS["arm"]
    xq, xa = random_batch(q, b=2, t=6, seed=1), random_batch(a, b=1, t=6, seed=2)

    def pad(t: torch.Tensor, w: int) -> torch.Tensor:
        return torch.nn.functional.pad(t, (0, w - t.shape[-1]))

    obs = torch.cat([xq["obs"][:1], pad(xa["obs"], 45), xq["obs"][1:]])
    act = torch.cat([xq["prev_act"][:1], pad(xa["prev_act"], 12), xq["prev_act"][1:]])
    rew = torch.cat([xq["prev_rew"][:1], xa["prev_rew"], xq["prev_rew"][1:]])
    sn = torch.cat([xq["step_num"][:1], xa["step_num"], xq["step_num"][1:]])
    groups = ["quadruped_locomotion", "arm", "quadruped_locomotion"]
    out = model.forward_mixed(groups, obs, act, rew, sn)
    ref_q = model("quadruped_locomotion", xq["obs"], xq["prev_act"], xq["prev_rew"], xq["step_num"])
    ref_a = model("arm", xa["obs"], xa["prev_act"], xa["prev_rew"], xa["step_num"])
    assert out.shape == (3, 6, 12)
    torch.testing.assert_close(out[[0, 2]], ref_q, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out[1, :, :3], ref_a[0], atol=1e-6, rtol=1e-5)
    assert torch.all(out[1, :, 3:] == 0)


def test_kv_cache_matches_full_forward_across_roll_and_resets():
    """B=8 envs, window 12, 40 steps: several rolls, per-env episode starts, per-env resets."""
    model = tiny_model()
    dims = TINY_GROUPS["arm"]
    b, t_total, w = 8, 40, 12
    g = torch.Generator().manual_seed(3)
    obs, act = torch.randn(b, t_total, 7, generator=g), torch.randn(b, t_total, 3, generator=g)
    rew = torch.randn(b, t_total, generator=g)
    # Episode lengths differ per env, so step_num 0 falls mid-context at different times.
    step_num = torch.stack([torch.arange(t_total) % (5 + i) for i in range(b)])
    resets = {20: [1, 4], 31: [0, 1, 7]}
    cache = model.new_cache(b, w)
    stepped = []
    for t in range(t_total):
        if t in resets:
            mask = torch.zeros(b, dtype=torch.bool)
            mask[resets[t]] = True
            cache.reset(mask)
        stepped.append(model.step("arm", cache, obs[:, t], act[:, t], rew[:, t], step_num[:, t]))
    stepped = torch.stack(stepped, 1)
    assert stepped.shape == (b, t_total, dims.act_dim)
    # Reference: per env and per context segment (between its resets), one full forward where
    # each query sees its last w tokens, which is what a rolling cache of size w computes.
    for e in range(b):
        cuts = [0, *(t for t, envs in resets.items() if e in envs), t_total]
        for s, end in itertools.pairwise(cuts):
            seg = slice(s, end)
            ref = model(
                "arm", obs[e : e + 1, seg], act[e : e + 1, seg], rew[e : e + 1, seg],
                step_num[e : e + 1, seg], window=w,
            )[0]  # fmt: skip
            torch.testing.assert_close(stepped[e, seg], ref, atol=1e-5, rtol=0)
    assert cache.lengths().tolist() == [9, 9, 12, 12, 12, 12, 12, 9]


def test_kv_cache_before_roll_equals_plain_forward_and_accepts_group_list():
    model = tiny_model()
    x = random_batch(TINY_GROUPS["arm"], b=3, t=6)
    cache = model.new_cache(3, window=8)
    steps = [
        model.step(["arm"] * 3, cache, x["obs"][:, t], x["prev_act"][:, t], x["prev_rew"][:, t],
                   x["step_num"][:, t])
        for t in range(6)
    ]  # fmt: skip
    full = model("arm", x["obs"], x["prev_act"], x["prev_rew"], x["step_num"])
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=1e-5)


def test_bf16_autocast_forward_is_finite_and_close():
    model = tiny_model()
    x = random_batch(TINY_GROUPS["arm"], b=2, t=16)
    args = (x["obs"], x["prev_act"], x["prev_rew"], x["step_num"])
    ref = model("arm", *args)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model("arm", *args)
    assert torch.isfinite(out).all()
    assert (out.float() - ref).abs().max() < 0.1


def test_action_loss_and_errors():
    pred, target = torch.zeros(2, 3, 4), torch.ones(2, 3, 4)
    assert action_loss(pred, target).item() == 1.0
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]], dtype=torch.bool)
    target[0, 2] = 100.0  # masked out
    assert action_loss(pred, target, mask).item() == 1.0
    model = tiny_model()
    x = random_batch(TINY_GROUPS["arm"], b=1, t=2)
    with pytest.raises(AdaptkitError, match="no group 'nope'"):
        model("nope", x["obs"], x["prev_act"], x["prev_rew"], x["step_num"])
    with pytest.raises(AdaptkitError, match="obs_dim=45"):
        model("quadruped_locomotion", x["obs"], x["prev_act"], x["prev_rew"], x["step_num"])
