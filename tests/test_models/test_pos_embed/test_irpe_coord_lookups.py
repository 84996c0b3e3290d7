"""The lookups an RPE coordinate adversary reads: the default 'fade' edge (no zero-gradient region inside any
shipped ball), the original 'clamp' edge (which has one), and the authors' 'reference' geometry."""
import glob
import inspect
import math
import os.path as osp
import warnings

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from adpe_mm.models.backbones import MAEPlusViT
from adpe_mm.models.pos_embed import (IRPE, decode_lookup, encode_lookup, relaxed_corners, relaxed_lookup_matrix,
                                     saturation_radius)

CPU = torch.device('cpu')
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
ALPHA, BETA, GAMMA = 1.9, 3.8, 15.2  # ratio 1.9


def g_tilde(x, limit):
    """The paper's relaxed piecewise index by hand, clamped to [-limit, limit]."""
    if abs(x) <= ALPHA:
        m = x
    else:
        m = math.copysign(min(BETA, ALPHA + math.log(abs(x) / ALPHA) / math.log(GAMMA / ALPHA) * (BETA - ALPHA)), x)
    return max(-limit, min(limit, m))


def inverse_g(m):
    """An offset x with g~(x) = m (|m| <= beta)."""
    if abs(m) <= ALPHA:
        return float(m)
    return math.copysign(ALPHA * math.exp((abs(m) - ALPHA) / (BETA - ALPHA) * math.log(GAMMA / ALPHA)), m)


def hat_weights(texel, size=7):
    """Linear interpolation weights of a texel position over ``size`` texels, zeros outside [0, size - 1]."""
    w = [0.] * size
    lo = math.floor(texel)
    for corner, weight in ((lo, 1 - (texel - lo)), (lo + 1, texel - lo)):
        if 0 <= corner < size:
            w[corner] += weight
    return w


def expected_weights(dy, dx, lookup):
    """The 49 bucket weights of offset (dy, dx), written from the geometry, not from the implementation."""
    if lookup == 'fade':  # exact geometry: index m at texel m + 3, index up to 3.8, zeros at texels -1 and 7
        wy, wx = hat_weights(g_tilde(dy, BETA) + 3), hat_weights(g_tilde(dx, BETA) + 3)
        return [wy[h] * wx[w] for h in range(7) for w in range(7)]
    # reference: u = g~ / 3.8, grid_sample(align_corners=False) texel ((u + 1) * 7 - 1) / 2, zero padding;
    # the row offset is the grid's x (the table's W axis), the column offset its y (the table's H axis).
    def texel(x):
        return ((g_tilde(x, BETA) / BETA + 1) * 7 - 1) / 2
    w_axis, h_axis = hat_weights(texel(dy)), hat_weights(texel(dx))
    return [h_axis[h] * w_axis[w] for h in range(7) for w in range(7)]


def lookup_weights(dy, dx, lookup):
    """The implementation's 49 bucket weights of the single pair of a 1x1 grid shifted to (dy, dx)."""
    delta = torch.tensor([dy, dx], dtype=torch.float64)
    return relaxed_lookup_matrix((1, 1), 1.9, False, CPU, delta, lookup)[0, :49, 0]


INTEGER_INDICES = [-3, -2, -1, 0, 1, 2, 3]


@pytest.mark.parametrize('my', INTEGER_INDICES)
def test_fade_reads_bucket_m_exactly_at_every_integer_index(my):
    for mx in INTEGER_INDICES:
        w = lookup_weights(inverse_g(my), inverse_g(mx), 'fade')
        assert w[(my + 3) * 7 + (mx + 3)].item() == pytest.approx(1, abs=1e-6), (my, mx)
        assert w.sum().item() == pytest.approx(1, abs=1e-6)


@pytest.mark.parametrize('dy,dx', [(0.25, -0.5), (2.7, -1.5), (5., 0.), (-9., 3.), (6.5, -12.), (14., 15.),
                                   (15.2, -15.2), (20., 0.), (-30., 40.)])
@pytest.mark.parametrize('lookup', ['fade', 'reference'])
def test_lookup_weights_match_the_geometry_at_fractional_offsets_and_the_edge(dy, dx, lookup):
    got = lookup_weights(dy, dx, lookup)  # (the grid's offsets are float32)
    torch.testing.assert_close(got, torch.tensor(expected_weights(dy, dx, lookup), dtype=got.dtype))


def test_integer_index_m_reads_bucket_m_with_fade_and_texel_3_plus_0921_m_with_the_reference():
    for m in INTEGER_INDICES:
        fade = lookup_weights(inverse_g(m), 0., 'fade').view(7, 7)
        assert fade[m + 3, 3].item() == pytest.approx(1, abs=1e-6)
        # reference: the row offset's index is on the W axis (dim 1); column offset 0 is texel 3 of H
        ref = lookup_weights(inverse_g(m), 0., 'reference').view(7, 7)
        texel = 3 + 3.5 * m / 3.8
        assert ref[3].sum().item() == pytest.approx(1, abs=1e-6) and ref.sum().item() == pytest.approx(1)
        assert (ref[3] * torch.arange(7.)).sum().item() == pytest.approx(texel, abs=1e-6)
        lo = math.floor(texel)
        assert ref[3, lo].item() == pytest.approx(1 - (texel - lo), abs=1e-6)
    # past gamma the index is 3.8: the reference reads texel 6.5 (half the edge bucket, half zero), the fade
    # reads 0.2 of the edge bucket (0.8 of the way to the zero beyond it)
    for x, edge in ((20., 6), (-20., 0)):
        ref = lookup_weights(x, 0., 'reference').view(7, 7)
        assert ref[3, edge].item() == pytest.approx(0.5, abs=1e-6) and ref.sum().item() == pytest.approx(0.5)
        fade = lookup_weights(x, 0., 'fade').view(7, 7)
        assert fade[edge, 3].item() == pytest.approx(0.2, abs=1e-6) and fade.sum().item() == pytest.approx(0.2)


def test_reference_bias_equals_the_authors_grid_sample_call():
    """Clean and shifted rows of index_mode='reference' against F.grid_sample on the table itself."""
    torch.manual_seed(0)
    m = IRPE(8, index_mode='reference', adversary=dict(mode='coord', norm='linf', eps=20.))
    torch.nn.init.normal_(m.lookup_table)
    with torch.no_grad():
        m.adv_coord.copy_(torch.tensor([4.3, -11.7]))
    side = 7
    q = torch.randn(1, 1, side * side, 8)
    rows = torch.zeros(1, side * side, dtype=torch.bool)
    rows[0, ::3] = True
    r, c = torch.meshgrid(torch.arange(side), torch.arange(side), indexing='ij')
    r, c = r.flatten().double(), c.flatten().double()

    def grid_sample_bias(shift):
        dy = r[:, None] - r[None, :] + shift[0]
        dx = c[:, None] - c[None, :] + shift[1]
        index = torch.tensor([[[g_tilde(float(a), BETA) / BETA, g_tilde(float(b), BETA) / BETA]
                               for a, b in zip(ra, rb)] for ra, rb in zip(dy, dx)])
        table = m.lookup_table[:, :49].detach().reshape(1, 8, 7, 7)
        pairs = F.grid_sample(table, index[None], mode='bilinear', align_corners=False, padding_mode='zeros')[0]
        return torch.einsum('bhid,dij->bhij', q, pairs)  # grid [..., 0] = row offset -> W, [..., 1] -> H

    expected = torch.where(rows[:, None, :, None], grid_sample_bias(m.adv_coord.detach()),
                           grid_sample_bias(torch.zeros(2)))
    torch.testing.assert_close(m(q, (side, side), rows), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m.reference_bias(q, (side, side), rows), expected, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------------------------------------
# No zero-gradient region inside any shipped ball


def coord_gradients(side, lookup, deltas, chunk=2048, seed=0):
    """d/d delta of a random linear function of the shifted bias on a side x side grid, at every shift in
    ``deltas`` [P, 2]: ``sum_o C_o * v . lookup(o + delta)`` over every offset o of the grid, with random
    ``C`` and ``v`` (the bias of one query row of a random table). It is exactly 0 only where every offset
    is saturated on an axis; evaluated from the bilinear corners, in batches of shifts."""
    g = torch.Generator().manual_seed(seed)
    r = torch.arange(-(side - 1), side, dtype=torch.float64)
    oy, ox = torch.cartesian_prod(r, r).T  # every offset of the grid, [K]
    coef = torch.randn(oy.shape, generator=g, dtype=torch.float64)
    v = torch.randn(50, generator=g, dtype=torch.float64)
    grads = []
    for part in deltas.split(chunk):
        d = part.clone().double().requires_grad_()
        shifts = torch.stack([oy[None] + d[:, :1], ox[None] + d[:, 1:]])  # [2, P, K]
        buckets, weights = relaxed_corners((1, 1), 1.9, False, CPU, shifts, lookup)  # offset 0 + shift
        bias = (weights * v[buckets]).sum(-1)  # [P, K]
        (bias * coef).sum().backward()
        grads.append(d.grad)
    return torch.cat(grads)


def box_points(eps, step):
    """A dense square grid over [-eps, eps]^2 with its boundary sampled 4x finer (where saturation starts)."""
    axis = torch.arange(-eps, eps + 1e-9, step)
    inner = torch.cartesian_prod(axis, axis)
    edge = torch.arange(-eps, eps + 1e-9, step / 4)
    full = torch.full_like(edge, eps)
    boundary = torch.cat([torch.stack([s * full, edge], 1) for s in (1, -1)] +
                         [torch.stack([edge, s * full], 1) for s in (1, -1)])
    return torch.cat([inner, boundary])


def in_ball(points, norm, eps):
    size = points.norm(dim=1) if norm == 'l2' else points.abs().max(dim=1).values
    return size <= eps + 1e-9


def shipped_coord_adversaries():
    """(config, norm, eps, lookup, pretraining grid) of every shipped config with an RPE coordinate adversary."""
    found = []
    paths = sorted(glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True))
    for path in paths:
        if '_base_' in path or 'adversary' not in open(path).read() and '/adpe/' not in path:
            continue
        cfg = Config.fromfile(path)
        adv = cfg.model.get('adversary')
        if not adv or adv['pe'] != 'rpe' or adv['mode'] != 'coord':
            continue
        index_mode = cfg.model.backbone.rpe.get('index_mode', 'relaxed')
        lookup = 'reference' if index_mode == 'reference' else adv.get('edge') or 'fade'
        defaults = inspect.signature(MAEPlusViT).parameters
        img = cfg.model.backbone.get('img_size', defaults['img_size'].default)
        patch = cfg.model.backbone.get('patch_size', defaults['patch_size'].default)
        found.append((osp.relpath(path, REPO_ROOT), adv['norm'], float(adv['eps']), lookup, img // patch))
    return found


SHIPPED = shipped_coord_adversaries()


def test_the_shipped_coordinate_configs_are_found():
    names = [c for c, *_ in SHIPPED]
    assert 'configs/adpe/vitb_rpe_coord_1600e.py' in names and len([n for n in names if 'table_a2' in n]) == 6
    assert {(norm, eps) for _, norm, eps, *_ in SHIPPED} >= {('l2', 3.), ('l2', 7.), ('linf', 10.), ('linf', 20.)}
    assert {grid for *_, grid in SHIPPED} == {7}  # 112 px crops of 16 px patches


@pytest.mark.parametrize('side', [7, 14])  # the pretraining grid and the fine-tuning grid (224 / 16)
def test_gradient_is_nonzero_everywhere_inside_every_shipped_ball(side):
    for lookup in sorted({lk for _, _, _, lk, _ in SHIPPED}):
        eps = max(e for _, _, e, lk, _ in SHIPPED if lk == lookup)
        points = box_points(eps, 0.25 if side == 7 else 0.5)
        grads = coord_gradients(side, lookup, points)
        for config, norm, e, lk, _ in SHIPPED:
            if lk != lookup:
                continue
            inside = in_ball(points, norm, e)
            zero = (grads[inside] == 0).any(dim=1)
            # (at least 9 x 9 points: the recalibrated l_inf 2 ball at the 0.5-patch spacing of the 14x14 grid)
            assert inside.sum() >= 81 and not zero.any(), (config, side, points[inside][zero][:5])


def test_the_original_clamp_edge_has_a_zero_gradient_region_inside_the_eps20_ball():
    # what the 'fade' default fixes: past 6 + g~^-1(3) = 12.33 patches every pair of the 7x7 grid reads bucket
    # +-3 on that axis, and that component of the gradient is exactly 0
    radius = 6 + inverse_g(3)
    assert radius == pytest.approx(12.333, abs=1e-3) and saturation_radius((7, 7), 1.9, 'clamp') == \
        pytest.approx(radius)
    points = torch.tensor([[radius + 0.01, 0.], [0., -radius - 0.01], [20., 20.], [radius - 0.05, 5.]])
    grads = coord_gradients(7, 'clamp', points)
    assert grads[0, 0] == 0 and grads[1, 1] == 0 and torch.all(grads[2] == 0)
    assert torch.all(grads[3] != 0)
    # with 'fade' (and 'reference') that happens only past 6 + gamma = 21.2, outside eps 20
    for lookup in ('fade', 'reference'):
        assert saturation_radius((7, 7), 1.9, lookup) == pytest.approx(6 + GAMMA)
        assert saturation_radius((14, 14), 1.9, lookup) == pytest.approx(13 + GAMMA)
        assert torch.all(coord_gradients(7, lookup, torch.tensor([[20., 20.], [-20., 20.]])) != 0)
        assert torch.all(coord_gradients(7, lookup, torch.tensor([[21.3, 21.3]])) == 0)


@pytest.mark.parametrize('side', [7, 14])
def test_the_module_gradient_at_the_corner_of_the_eps20_ball(side):
    def corner_grad(**adv):
        torch.manual_seed(1)
        m = IRPE(8, adversary=dict(mode='coord', norm='linf', eps=20., **adv))
        torch.nn.init.normal_(m.lookup_table)
        with torch.no_grad():
            m.adv_coord.fill_(20.)
        length = side * side + 1
        q = torch.randn(2, 2, length, 8)
        rows = torch.rand(2, length) > 0.3
        rows[:, 0] = False
        (m(q, (side, side), rows) * torch.randn(2, 2, length, length)).sum().backward()
        return m.adv_coord.grad

    assert torch.all(corner_grad() != 0)  # the default edge, 'fade'
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        clamped = corner_grad(edge='clamp')
    if side == 7:
        assert torch.all(clamped == 0) and any('12.33' in str(w.message) for w in caught)
    else:  # 13 + 6.33 = 19.33 < 20: the corner of the fine-tuning grid is saturated too
        assert torch.all(clamped == 0)


def test_the_adversarial_rows_read_the_clean_lookup_at_delta_zero_on_any_grid():
    torch.manual_seed(0)
    for side in (7, 14):
        m = IRPE(8, adversary=dict(mode='coord', norm='l2', eps=3.))
        clean = IRPE(8, index_mode='relaxed')
        torch.nn.init.normal_(m.lookup_table)
        clean.load_state_dict({k: v for k, v in m.state_dict().items() if 'adv_' not in k})
        q = torch.randn(1, 2, side * side + 1, 8)
        rows = torch.ones(1, side * side + 1, dtype=torch.bool)
        rows[:, 0] = False
        torch.testing.assert_close(m(q, (side, side), rows), clean(q, (side, side)), rtol=0, atol=1e-6)


def test_a_ball_reaching_the_saturation_radius_is_refused_naming_eps_grid_and_radius():
    m = IRPE(8, adversary=dict(mode='coord', norm='linf', eps=21.5))
    q = torch.randn(1, 1, 50, 8)
    rows = torch.ones(1, 50, dtype=torch.bool)
    rows[:, 0] = False
    with pytest.raises(ValueError, match=r'eps=21\.5.*21\.20 of the 7x7 grid'):
        m(q, (7, 7), rows)
    m(torch.randn(1, 1, 197, 8), (14, 14), torch.ones(1, 197, dtype=torch.bool))  # 28.2 on 14x14: fine


# ----------------------------------------------------------------------------------------------------------
# Recorded lookups


def test_the_reference_lookup_is_recorded_and_old_states_keep_their_lookup():
    state = IRPE(8, index_mode='reference').state_dict()
    assert state['_extra_state'].tolist() == [2, 1_900_000]
    assert decode_lookup(state['_extra_state']) == dict(index_mode='reference', ratio=1.9)
    with pytest.raises(ValueError, match="index_mode='reference'"):
        IRPE(8, index_mode='relaxed').load_state_dict(state)
    # a state written before the reference lookup existed ([1, ratio], or the dict) is still the relaxed
    # lookup, loads into a relaxed model and reads what it read: the far offsets of 14x14 on bucket 3 exactly
    old = IRPE(8, index_mode='relaxed').state_dict()
    assert torch.equal(old['_extra_state'], encode_lookup('relaxed', 1.9)) and old['_extra_state'].tolist() == [
        1, 1_900_000]
    for extra in (torch.tensor([1, 1_900_000]), dict(index_mode='relaxed', ratio=1.9)):
        model = IRPE(8, index_mode='relaxed')
        model.load_state_dict(dict(old, _extra_state=extra))
        with pytest.raises(ValueError, match="index_mode='relaxed'"):
            IRPE(8, index_mode='reference').load_state_dict(dict(old, _extra_state=extra))
    w = relaxed_lookup_matrix((1, 1), 1.9, False, CPU, torch.tensor([13., -9.]))[0, :49, 0]  # the 'clamp' lookup
    assert w[6 * 7 + 0].item() == 1


@pytest.mark.parametrize('kwargs,match', [
    (dict(index_mode='reference', adversary=dict(mode='coord', norm='l2', eps=3., edge='fade')), 'own edge'),
    (dict(adversary=dict(mode='embed', norm='l2', eps=3., edge='fade')), "edge='fade'"),
    (dict(adversary=dict(mode='coord', norm='l2', eps=3., edge='wrap')), "'wrap'"),
])
def test_bad_edges_are_refused_naming_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        IRPE(8, **kwargs)


@pytest.mark.parametrize('index_mode', ['relaxed', 'reference'])
def test_a_downstream_backbone_reads_the_pretraining_lookup_and_refuses_another(index_mode):
    from adpe_mm.models.backbones import IRPEViT
    from adpe_mm.models.backbones.pretrained import load_pretrained_encoder
    arch = dict(embed_dims=32, num_layers=1, num_heads=2, feedforward_channels=64)
    rpe = dict(ratio=1.9, index_mode=index_mode)
    encoder = MAEPlusViT(arch=arch, rpe=rpe, adversary=dict(pe='rpe', mode='coord', norm='linf', eps=20.))
    encoder.init_weights()
    state = {'backbone.' + k: v for k, v in encoder.state_dict().items()}
    target = IRPEViT(arch=arch, img_size=224, rpe=rpe)
    report = load_pretrained_encoder(target, state)
    assert report.rpe == rpe and target.layers[0].attn.rpe.clean_lookup == encoder.layers[0].attn.rpe.clean_lookup
    other = 'reference' if index_mode == 'relaxed' else 'relaxed'
    with pytest.raises(ValueError, match=f"index_mode={index_mode!r}"):
        load_pretrained_encoder(IRPEViT(arch=arch, img_size=224, rpe=dict(ratio=1.9, index_mode=other)), state)
