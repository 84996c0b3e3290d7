"""fused='aligned': the iRPE bias reaches scaled_dot_product_attention in the layout of its memory-efficient
kernel (row strides a multiple of 8 elements, unit last stride), with outputs and gradients unchanged."""
import pytest
import torch
import torch.nn.functional as F

from adpe_mm.models.layers import attention as attention_module
from adpe_mm.models.layers.attention import SDPA_MASK_ALIGN, Attention, AttentionContext, align_bias

RPES = [dict(ratio=1.9), dict(ratio=1.9, index_mode='relaxed'),
        dict(ratio=1.9, adversary=dict(mode='embed', norm='l2', eps=3.)),
        dict(ratio=1.9, adversary=dict(mode='coord', norm='linf', eps=20.))]


def twins(rpe):
    torch.manual_seed(0)
    plain = Attention(32, 4, rpe=rpe, fused=True)
    aligned = Attention(32, 4, rpe=rpe, fused='aligned')
    with torch.no_grad():
        for p in plain.parameters():
            p.normal_(std=0.3)
    aligned.load_state_dict(plain.state_dict())
    return plain, aligned


def forward_backward(attn, x, ctx):
    x = x.clone().requires_grad_()
    out = attn(x, ctx)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), x.grad, {n: p.grad for n, p in attn.named_parameters()}


@pytest.mark.parametrize('with_cls', [True, False], ids=['L50', 'L49'])
@pytest.mark.parametrize('rpe', RPES, ids=['integer', 'relaxed', 'embed-adv', 'coord-adv'])
def test_outputs_and_gradients_equal_the_unaligned_path(rpe, with_cls):
    plain, aligned = twins(rpe)
    L = 50 if with_cls else 49
    x = torch.randn(3, L, 32)
    rows = torch.rand(3, L) > 0.5
    rows[:, 0] &= not with_cls
    ctx = AttentionContext((7, 7), rows)
    out, gx, grads = forward_backward(plain, x, ctx)
    out_a, gx_a, grads_a = forward_backward(aligned, x, ctx)
    torch.testing.assert_close(out_a, out, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(gx_a, gx, rtol=1e-6, atol=1e-6)
    assert grads.keys() == grads_a.keys()
    for name, g in grads.items():
        torch.testing.assert_close(grads_a[name], g, rtol=1e-6, atol=1e-6, msg=name)
    if 'adversary' in rpe:
        adv = [n for n in grads if 'adv_' in n]
        assert adv and all(grads[n].abs().max() > 0 for n in adv)  # the adversary gradient is really compared


def test_sdpa_receives_the_bias_with_aligned_strides(monkeypatch):
    seen, sdpa = [], F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kwargs):
        seen.append(attn_mask)
        return sdpa(q, k, v, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(attention_module.F, 'scaled_dot_product_attention', spy)
    plain, aligned = twins(dict(ratio=1.9))
    x = torch.randn(2, 50, 32)
    ctx = AttentionContext((7, 7))
    plain(x, ctx), aligned(x, ctx)
    unaligned_mask, aligned_mask = seen
    assert unaligned_mask.stride()[:3] == (4 * 50 * 50, 50 * 50, 50)  # 50 is not a multiple of 8
    assert aligned_mask.shape == (2, 4, 50, 50) and aligned_mask.stride(-1) == 1
    assert all(s % SDPA_MASK_ALIGN == 0 for s in aligned_mask.stride()[:3]), aligned_mask.stride()
    assert torch.equal(aligned_mask, unaligned_mask)


def test_align_bias_keeps_an_already_aligned_bias_and_pads_others_to_the_next_multiple():
    bias = torch.randn(2, 3, 5, 16)
    assert align_bias(bias) is bias
    odd = torch.randn(2, 3, 5, 13)
    out = align_bias(odd)
    assert torch.equal(out, odd) and out.stride() == (3 * 5 * 16, 5 * 16, 16, 1)


def test_an_unknown_fused_mode_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="'fast'"):
        Attention(32, 4, fused='fast')
