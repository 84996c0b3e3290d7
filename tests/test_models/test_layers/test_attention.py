import pytest
import torch

from adpe_mm.models.layers import Attention, AttentionContext


def pair(rpe):
    torch.manual_seed(0)
    fast = Attention(32, 4, rpe=rpe, fused=True)
    ref = Attention(32, 4, rpe=rpe, fused=False)
    with torch.no_grad():
        for p in fast.parameters():
            p.normal_(std=0.3)
    ref.load_state_dict(fast.state_dict())
    return fast, ref


@pytest.mark.parametrize('rpe', [None, dict(ratio=1.9), dict(ratio=1.9, index_mode='relaxed'),
                                 dict(ratio=1.9, adversary=dict(mode='embed', norm='l2', eps=3.)),
                                 dict(ratio=1.9, adversary=dict(mode='coord', norm='linf', eps=20.))])
def test_sdpa_path_equals_reference_path(rpe):
    fast, ref = pair(rpe)
    x = torch.randn(3, 50, 32)
    rows = torch.rand(3, 50) > 0.5
    rows[:, 0] = False
    ctx = AttentionContext((7, 7), rows)
    torch.testing.assert_close(fast(x, ctx), ref(x, ctx), rtol=1e-5, atol=1e-5)


def test_logits_are_scaled_query_times_key_plus_scaled_query_times_table():
    from adpe_mm.models.pos_embed import bucket_index
    attn = Attention(32, 4, rpe=dict(ratio=1.9))
    with torch.no_grad():
        attn.rpe.lookup_table.normal_()
    x = torch.randn(1, 50, 32)
    qkv = attn.qkv(x).reshape(1, 50, 3, 4, 8).permute(2, 0, 3, 1, 4)
    q, k = qkv[0] / 8**0.5, qkv[1]  # the scaled query, by hand
    r = attn.rpe.lookup_table.T[bucket_index((7, 7), 1.9, True, torch.device('cpu'))]  # r_ij: [L, L, d]
    expected = q @ k.transpose(-2, -1) + torch.einsum('bhid,ijd->bhij', q, r)
    torch.testing.assert_close(attn.logits(x, AttentionContext((7, 7))), expected, rtol=1e-5, atol=1e-5)


def test_per_bucket_rpe_adversary_changes_attention_but_row_constant_one_does_not():
    attn = Attention(32, 4, rpe=dict(ratio=1.9, adversary=dict(mode='embed', norm='l2', eps=1e9)))
    with torch.no_grad():
        attn.rpe.lookup_table.normal_()
    x = torch.randn(2, 50, 32)
    rows = torch.ones(2, 50, dtype=torch.bool)
    rows[:, 0] = False
    ctx = AttentionContext((7, 7), rows)
    clean = attn(x, ctx).detach()
    with torch.no_grad():  # one vector added to every bucket: q.a is constant over a softmax row
        attn.rpe.adv_embed.copy_(torch.randn(8, 1).expand(8, 50) * 5)
    torch.testing.assert_close(attn(x, ctx), clean, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # a different vector per bucket really distorts the relative geometry
        attn.rpe.adv_embed.normal_(std=5)
    assert (attn(x, ctx) - clean).abs().max() > 1e-2


def test_irpe_attention_needs_the_grid():
    attn = Attention(32, 4, rpe=dict(ratio=1.9))
    with pytest.raises(ValueError, match='AttentionContext'):
        attn(torch.randn(1, 50, 32))
