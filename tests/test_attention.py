"""Blocked ALiBi attention equals the plain one (values and gradients), activation checkpointing
changes nothing but memory, and no (heads × T × T) bias is built beyond one block."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers_model import TINY_GROUPS, random_batch, tiny_config, tiny_model

from adaptkit.model import attention as att
from adaptkit.model.attention import AlibiTemplate, alibi_bias, alibi_slopes


def _plain(q, k, v, slopes, window):
    """Reference: one SDPA call with the full [heads, T, T] bias, in float64."""
    bias = alibi_bias(slopes, q.shape[2], window)[None].double()
    return F.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=bias)


@pytest.mark.parametrize("flash", [True, False], ids=["cpu-flash", "recompute"])
@pytest.mark.parametrize(
    ("t", "block", "window"),
    [(100, 32, None), (100, 32, 20), (257, 64, None), (40, 64, None), (70, 16, 7)],
)
def test_blocked_equals_plain_values_and_grads(monkeypatch, flash, t, block, window):
    if not flash:  # the path CUDA (or a torch without the CPU flash ops) takes
        monkeypatch.setattr(att, "_flash_ok", lambda q: False)
    g = torch.Generator().manual_seed(t + block)
    b, h, d = 2, 4, 16
    q, k, v = (torch.randn(b, h, t, d, generator=g, requires_grad=True) for _ in range(3))
    slopes = alibi_slopes(h)
    template = AlibiTemplate(slopes, t, block, window, torch.device("cpu"))
    out = att.blocked_alibi_attention(q, k, v, template)
    ref = _plain(q, k, v, slopes, window)
    torch.testing.assert_close(out.double(), ref, atol=2e-6, rtol=1e-5)
    grad = torch.randn(out.shape, generator=g)
    got = torch.autograd.grad(out, (q, k, v), grad)
    want = torch.autograd.grad(ref, (q, k, v), grad.double())
    for a, w in zip(got, want, strict=True):
        torch.testing.assert_close(a, w.to(a.dtype), atol=2e-5, rtol=1e-4)


def test_template_is_one_block_of_rows_not_t_by_t():
    t, block, heads = 1000, 128, 4
    template = AlibiTemplate(alibi_slopes(heads), t, block, None, torch.device("cpu"))
    assert template.bias.shape == (1, heads, block, 896 + block)  # 896: start of the last block
    blocks = list(template.blocks())
    assert [(s, e, lo) for s, e, lo, _ in blocks][-1] == (896, 1000, 0)
    # every block's slice is exactly the full bias's block (distance-only ALiBi)
    full = alibi_bias(alibi_slopes(heads), t)
    for s, e, lo, bias in blocks:
        assert torch.equal(bias[0], full[:, s:e, lo:e])


def _transformer_io(block_size: int, checkpointing: bool, window: int | None, t: int = 40):
    torch.manual_seed(0)
    model = tiny_model(tiny_config(context_len=t)).train()
    model.transformer.block_size = block_size
    model.transformer.checkpointing = checkpointing
    x = random_batch(TINY_GROUPS["arm"], b=2, t=t, seed=4)
    out = model(
        "arm", x["obs"], x["prev_act"], x["prev_rew"], x["step_num"], window=window
    )  # fmt: skip
    loss = (out - x["target"]).pow(2).mean()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.detach(), grads


@pytest.mark.parametrize("window", [None, 9])
def test_model_blocked_and_checkpointed_equal_plain(window):
    ref_out, ref_grads = _transformer_io(block_size=512, checkpointing=False, window=window)
    for block_size, ckpt in ((8, False), (8, True), (512, True)):
        out, grads = _transformer_io(block_size, ckpt, window)
        torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
        assert grads.keys() == ref_grads.keys()
        for name, g in grads.items():
            torch.testing.assert_close(g, ref_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_bf16_blocked_attention_is_close_to_fp32():
    """Under bf16 autocast q/k/v are bf16; the ALiBi bias and the softmax stay fp32."""
    torch.manual_seed(0)
    model = tiny_model(tiny_config(context_len=300))
    model.transformer.block_size = 64
    x = random_batch(TINY_GROUPS["arm"], b=1, t=300, seed=5)
    args = (x["obs"], x["prev_act"], x["prev_rew"], x["step_num"])
    ref = model("arm", *args)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model("arm", *args)
    assert out.dtype == torch.bfloat16 or out.dtype == torch.float32
    assert (out.float() - ref).abs().max() < 0.1


def test_bf16_kv_cache_step_is_close_to_fp32_forward():
    model = tiny_model()
    x = random_batch(TINY_GROUPS["arm"], b=3, t=20, seed=6)
    full = model("arm", x["obs"], x["prev_act"], x["prev_rew"], x["step_num"], window=8)
    cache = model.new_cache(3, window=8, dtype=torch.bfloat16)
    assert cache.k[0].dtype == torch.bfloat16
    steps = torch.stack(
        [
            model.step("arm", cache, x["obs"][:, t], x["prev_act"][:, t], x["prev_rew"][:, t],
                       x["step_num"][:, t])
            for t in range(20)
        ],
        1,
    )  # fmt: skip
    assert steps.dtype == torch.float32
    assert (steps - full).abs().max() < 0.05
