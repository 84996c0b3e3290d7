import copy

import pytest
import torch

from adpe_mm.adversary import adversary_parameter, is_adversary, parse_adversary, project_


def test_adversaries_start_at_zero_and_survive_deepcopy():
    p = adversary_parameter((3, 4), 'l2', 2.)
    assert torch.equal(p, torch.zeros(3, 4)) and is_adversary(p)
    q = copy.deepcopy(torch.nn.ParameterList([p]))[0]
    assert q is not p and is_adversary(q) and q.adv_ball == p.adv_ball


@pytest.mark.parametrize('norm,value,expect', [
    ('l2', [3., 4.], [1.2, 1.6]),  # length 5 -> 2
    ('l2', [0.3, 0.4], [0.3, 0.4]),  # inside: unchanged
    ('l2', [0., 0.], [0., 0.]),  # zero stays zero (no 0/0)
    ('linf', [3., -0.5], [2., -0.5]),
])
def test_projection_onto_the_ball(norm, value, expect):
    p = adversary_parameter(2, norm, 2.)
    with torch.no_grad():
        p.copy_(torch.tensor(value))
    project_(p)
    torch.testing.assert_close(p.data, torch.tensor(expect))


def test_l2_projection_of_a_huge_adversary_is_not_zeroed():
    p = adversary_parameter(2, 'l2', 1.)
    with torch.no_grad():
        p.copy_(torch.tensor([3e30, 4e30]))
    project_(p)
    torch.testing.assert_close(p.data, torch.tensor([0.6, 0.8]))


@pytest.mark.parametrize('cfg,match', [
    (dict(pe='ape', mode='embed', norm='l2', eps=float('nan')), 'nan'),
    (dict(pe='ape', mode='embed', norm='l2', eps=True), 'True'),
    (dict(pe='ape', mode='embed', norm='l2'), 'None'),
    (dict(pe='ape', mode='embed', norm='lp', eps=1.), "'lp'"),
    (dict(pe='ape', mode='coord', norm='l2', eps=1., edge='fade'), "edge='fade'.*pe='ape'"),
    (dict(pe='rpe', mode='coord', norm='l2', eps=1., edge='mirror'), "'mirror'"),
])
def test_bad_adversary_configs_name_the_value(cfg, match):
    with pytest.raises(ValueError, match=match):
        parse_adversary(cfg)


def test_the_rpe_coord_edge_reaches_every_irpe_of_the_model():
    from _tiny import tiny_mae_plus
    assert parse_adversary(dict(pe='rpe', mode='coord', norm='l2', eps=1., edge='clamp'))['edge'] == 'clamp'
    assert 'edge' not in parse_adversary(dict(pe='rpe', mode='coord', norm='l2', eps=1.))
    for edge, lookup in ((None, 'fade'), ('clamp', 'clamp')):
        model = tiny_mae_plus(dict(pe='rpe', mode='coord', norm='l2', eps=3., edge=edge))
        rpes = [m for m in model.modules() if type(m).__name__ == 'IRPE']
        assert len(rpes) == 4 and all(m.adversary_lookup == lookup for m in rpes)  # 2 encoder, 2 decoder blocks
