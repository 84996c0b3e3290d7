import math

import pytest
import torch

from adpe_mm.models.pos_embed import irpe as irpe_mod
from adpe_mm.models.pos_embed import (IRPE, bucket_index, decode_lookup, piecewise_index, relaxed_index,
                                     relaxed_lookup_matrix)

CPU = torch.device('cpu')
A, B, G = 1.9, 3.8, 15.2  # ratio 1.9

# g(x) by hand: |x| <= 1.9 -> round(x); else 1.9 + ln(|x|/1.9) / ln(8) * 1.9, rounded, capped at 3.8, truncated:
#   2 -> 1.947 -> 2,  3 -> 2.317 -> 2,  4 -> 2.580 -> 3,  5 -> 2.784 -> 3,  6 -> 2.951 -> 3,  7 -> 3.09 -> 3,
#  13 -> 3.89 -> 4 -> min(3.8, 4) = 3.8 -> 3.
HAND_G = {0: 0, 1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 6: 3, 7: 3, 10: 3, 13: 3}


def hand_bucket(q, k):
    """Product bucket of query (row, col) and key (row, col) from HAND_G."""
    def g(x):
        return int(math.copysign(HAND_G[abs(x)], x))
    return (g(q[0] - k[0]) + 3) * 7 + (g(q[1] - k[1]) + 3)


def test_piecewise_index_matches_hand_values():
    xs = sorted(HAND_G) + [-x for x in sorted(HAND_G) if x]
    got = piecewise_index(torch.tensor(xs, dtype=torch.float32), A, B, G).tolist()
    assert got == [int(math.copysign(HAND_G[abs(x)], x)) for x in xs]


@pytest.mark.parametrize('side,pairs', [
    (7, [((0, 0), (6, 6)), ((3, 3), (3, 3)), ((0, 0), (0, 2)), ((2, 5), (6, 1)), ((6, 0), (3, 4))]),
    (14, [((13, 0), (0, 13)), ((5, 5), (2, 8)), ((7, 7), (3, 4)), ((0, 9), (1, 4)), ((10, 2), (10, 12))]),
])
def test_bucket_index_matches_hand_computed_buckets(side, pairs):
    index = bucket_index((side, side), 1.9, True, CPU)
    assert index.shape == (side * side + 1, side * side + 1)
    for q, k in pairs:
        i, j = 1 + q[0] * side + q[1], 1 + k[0] * side + k[1]
        assert index[i, j].item() == hand_bucket(q, k), (q, k)


def test_cls_pairs_use_the_extra_bucket():
    index = bucket_index((7, 7), 1.9, True, CPU)
    assert torch.all(index[0] == 49) and torch.all(index[:, 0] == 49)
    assert index[1:, 1:].max() == 48 and index[1:, 1:].min() == 0


def test_relaxed_index_is_continuous_and_clamped():
    x = torch.linspace(-20, 20, 4001)
    r = relaxed_index(x, A, B, G)
    assert r.abs().max() == 3
    assert (r[1:] - r[:-1]).min() >= 0  # monotone
    assert (r[1:] - r[:-1]).abs().max() < 0.02  # no jumps


def test_relaxed_index_gradient_is_finite_everywhere():
    x = torch.tensor([0., 0.5, 1.9, 2.5, -4., 30.], requires_grad=True)
    relaxed_index(x, A, B, G).sum().backward()
    assert torch.isfinite(x.grad).all()


def make(dims=16, **kwargs):
    m = IRPE(dims, **kwargs)
    torch.manual_seed(0)
    torch.nn.init.normal_(m.lookup_table)
    return m


@pytest.mark.parametrize('side', [7, 14])
def test_relaxed_equals_integer_lookup_where_index_functions_agree(side):
    q = torch.randn(2, 3, side * side + 1, 16)
    integer = make(index_mode='integer')
    relaxed = make(index_mode='relaxed')
    bi, br = integer(q, (side, side)), relaxed(q, (side, side))
    rows = torch.arange(side).repeat_interleave(side)
    cols = torch.arange(side).repeat(side)
    dy, dx = rows[:, None] - rows[None], cols[:, None] - cols[None]
    agree = lambda d: (d.abs() <= 1) | (d.abs() >= 7)  # noqa: E731 (offsets where g and g~ are equal)
    sel = agree(dy) & agree(dx)
    assert sel.sum() > side  # the check covers many pairs
    torch.testing.assert_close(br[..., 1:, 1:][..., sel], bi[..., 1:, 1:][..., sel])
    torch.testing.assert_close(br[..., 0, :], bi[..., 0, :])  # cls pairs
    assert not torch.allclose(br, bi)  # and they do differ elsewhere (offset 2..6)


def offset_with_relaxed_index(m):
    """An offset x with g~(x) = m exactly (the inverse of the log branch for |m| = 2, saturation for 3)."""
    if abs(m) <= 1:
        return float(m)
    if abs(m) == 2:
        return math.copysign(A * math.exp((2 - A) / (B - A) * math.log(G / A)), m)
    return math.copysign(10., m)


def test_relaxed_lookup_reads_bucket_m_exactly_at_integer_index_m():
    # The self pair of a 1x1 grid has offset 0; delta moves it to any offset. Every integer relaxed index
    # m in -3..3 (table edges included) must read exactly bucket m of each axis, with nothing mixed in.
    for my in range(-3, 4):
        for mx in range(-3, 4):
            delta = torch.tensor([offset_with_relaxed_index(my), offset_with_relaxed_index(mx)])
            weights = relaxed_lookup_matrix((1, 1), 1.9, False, CPU, delta)[0, :, 0]
            expect = (my + 3) * 7 + (mx + 3)
            assert weights[expect].item() == pytest.approx(1, abs=1e-5), (my, mx)
            assert weights.sum().item() == pytest.approx(1, abs=1e-6)


def test_relaxed_lookup_interpolates_between_neighbouring_buckets_only():
    delta = torch.tensor([0.25, -0.5])  # inside |x| <= alpha the relaxed index is the offset itself
    w = relaxed_lookup_matrix((1, 1), 1.9, False, CPU, delta)[0, :, 0]
    # row at table position 3.25 (between 3 and 4), column 2.5 (between 2 and 3): weights (0.75, 0.25) x (0.5, 0.5).
    expected = {3 * 7 + 2: 0.375, 3 * 7 + 3: 0.375, 4 * 7 + 2: 0.125, 4 * 7 + 3: 0.125}
    for bucket, value in expected.items():
        assert w[bucket].item() == pytest.approx(value)
    assert w.sum().item() == pytest.approx(1.0)


@pytest.mark.parametrize('mode,adv', [
    ('integer', None), ('relaxed', None), ('integer', dict(mode='embed', norm='l2', eps=3.)),
    ('relaxed', dict(mode='embed', norm='l2', eps=3.)), ('relaxed', dict(mode='coord', norm='linf', eps=20.))])
@pytest.mark.parametrize('with_cls', [True, False])
def test_fast_path_equals_reference(mode, adv, with_cls):
    m = make(index_mode=mode, adversary=adv)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.startswith('adv_'):
                p.normal_()
    length = 50 if with_cls else 49
    q = torch.randn(2, 3, length, 16)
    rows = torch.rand(2, length) > 0.4
    if with_cls:
        rows[:, 0] = False
    torch.testing.assert_close(m(q, (7, 7), rows), m.reference_bias(q, (7, 7), rows), rtol=1e-5, atol=1e-5)


def test_dense_and_gathered_relaxed_lookups_agree(monkeypatch):
    m = make(adversary=dict(mode='coord', norm='linf', eps=20.))
    with torch.no_grad():
        m.adv_coord.copy_(torch.tensor([0.7, -1.3]))
    q = torch.randn(2, 2, 197, 16)
    rows = torch.rand(2, 197) > 0.5
    rows[:, 0] = False
    dense = m(q, (14, 14), rows)
    monkeypatch.setattr(irpe_mod, 'DENSE_LOOKUP_LIMIT', 0)
    torch.testing.assert_close(m(q, (14, 14), rows), dense, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('hw', [(7, 7), (14, 14), (32, 32), (5, 9)])
@pytest.mark.parametrize('mode', ['integer', 'relaxed'])
def test_any_grid_size(hw, mode):
    m = make(dims=8, index_mode=mode)
    q = torch.randn(1, 1, hw[0] * hw[1], 8)
    assert m(q, hw).shape == (1, 1, hw[0] * hw[1], hw[0] * hw[1])


def test_coord_adversary_at_zero_reproduces_clean_lookup_and_has_gradient():
    m = make(adversary=dict(mode='coord', norm='linf', eps=20.))
    clean = make(index_mode='relaxed')
    q = torch.randn(2, 3, 50, 16)
    rows = torch.rand(2, 50) > 0.3
    rows[:, 0] = False
    out = m(q, (7, 7), rows)
    assert torch.equal(out, clean(q, (7, 7), rows))
    (out * torch.randn_like(out)).sum().backward()
    assert m.adv_coord.grad.abs().sum() > 0


def test_embed_adversary_only_touches_masked_rows():
    m = make(adversary=dict(mode='embed', norm='l2', eps=3.))
    with torch.no_grad():
        m.adv_embed.normal_()
    q = torch.randn(1, 2, 50, 16)
    rows = torch.zeros(1, 50, dtype=torch.bool)
    rows[0, 5] = True
    diff = (m(q, (7, 7), rows) - m(q, (7, 7))).abs().sum(dim=(0, 1, 3))
    assert diff[5] > 0 and diff.sum() == diff[5]


def test_index_mode_is_kept_in_the_state_dict_and_checked_on_load():
    relaxed = IRPE(16, index_mode='relaxed')
    state = relaxed.state_dict()
    assert decode_lookup(state['_extra_state']) == dict(index_mode='relaxed', ratio=1.9)
    IRPE(16, index_mode='relaxed').load_state_dict(state)
    with pytest.raises(ValueError, match="index_mode='relaxed'"):
        IRPE(16, index_mode='integer').load_state_dict(state)
    with pytest.raises(ValueError, match='ratio=1.9'):
        IRPE(16, ratio=1.5, index_mode='relaxed').load_state_dict(state)


def test_every_state_dict_entry_is_a_tensor_that_survives_a_half_cast():
    # mmengine's runner broadcasts every state-dict entry at start-up; a str in the extra state broke that.
    state = IRPE(16, index_mode='relaxed', adversary=dict(mode='coord', norm='linf', eps=20.)).state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values()), {k: type(v) for k, v in state.items()}
    assert state['_extra_state'].dtype == torch.int64
    halved = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    IRPE(16, index_mode='relaxed', adversary=dict(mode='coord', norm='linf', eps=20.)).load_state_dict(halved)


def test_checkpoints_with_the_old_dict_extra_state_still_load_and_are_still_checked():
    state = dict(IRPE(16).state_dict(), _extra_state=dict(index_mode='integer', ratio=1.9))  # pre-tensor layout
    model = IRPE(16, index_mode='integer')
    model.load_state_dict(state)
    assert decode_lookup(model.state_dict()['_extra_state']) == dict(index_mode='integer', ratio=1.9)
    with pytest.raises(ValueError, match="index_mode='integer'"):
        IRPE(16, index_mode='relaxed').load_state_dict(state)


@pytest.mark.parametrize('state', [torch.tensor([7, 1_900_000]), torch.tensor([0.5, 1.9]), 'relaxed'])
def test_a_bad_lookup_state_is_refused_naming_it(state):
    with pytest.raises(ValueError, match='not an iRPE lookup state'):
        decode_lookup(state)


@pytest.mark.parametrize('kwargs,match', [
    (dict(index_mode='nearest'), "'nearest'"),
    (dict(adversary=dict(mode='shift', norm='l2', eps=1.)), "'shift'"),
    (dict(adversary=dict(mode='embed', norm='l1', eps=1.)), "'l1'"),
    (dict(adversary=dict(mode='embed', norm='l2', eps=0.)), 'eps.*0'),
    (dict(adversary=dict(mode='coord', norm='l2', eps=1.), index_mode='integer'), 'relaxed'),
    (dict(ratio=-1.), '-1'),
])
def test_bad_values_are_refused_naming_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        IRPE(16, **kwargs)
