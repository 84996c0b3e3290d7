"""pgd_attack, start_values and uniform_in_ball on losses whose maximiser is known in closed form."""
import math

import pytest
import torch

from adpe_mm.adversary import (AdversaryBall, adversary_norm, adversary_parameter, pgd_attack, pgd_step_,
                               start_values, uniform_in_ball)

W = torch.tensor([[1., -2.], [-0.5, 0.25], [0., 3.]])  # one weight row per sample


def linear_losses(values):
    """Sample b's loss is w_b . v_b (per-sample values [3, 2]) or w_b . v (one shared value [2])."""
    v = values['d']
    return (W * (v if v.dim() == 2 else v[None])).sum(-1)


@pytest.mark.parametrize('norm', ['linf', 'l2'])
def test_per_sample_pgd_reaches_each_samples_own_maximiser(norm):
    ball = AdversaryBall(norm, 2.)
    result = pgd_attack(linear_losses, {'d': torch.zeros(3, 2)}, {'d': ball}, steps=3, step_size=0.5,
                        per_sample=True)
    # maximiser of w . v over the ball: eps * sign(w) (l_inf) or eps * w / ||w|| (l2); w = 0 gives no move
    best = 2. * (W.sign() if norm == 'linf' else W / W.norm(dim=1, keepdim=True))
    torch.testing.assert_close(result.values['d'], best)
    torch.testing.assert_close(result.chosen, (W * best).sum(-1))
    assert torch.equal(result.start, torch.zeros(3)) and len(result.losses) == 4 and len(result.grad_norms) == 3


def test_a_shared_value_steps_on_the_summed_gradient_and_keeps_the_best_iterate():
    # shared v: the mean loss is (mean_b w_b) . v; with steps of 2 eps it overshoots back and forth
    calls = []

    def reduce(g):
        calls.append(g.clone())
        return g

    result = pgd_attack(linear_losses, {'d': torch.zeros(2)}, {'d': AdversaryBall('linf', 1.)}, steps=2,
                        step_size=2., reduce_grad=reduce, reduce_loss=lambda t: t)
    torch.testing.assert_close(result.values['d'], W.mean(0).sign())
    assert len(calls) == 2 and result.chosen.mean() == max(result.losses)


def test_the_best_iterate_is_never_below_the_start_even_when_steps_lower_the_loss():
    # a concave bump at 0.3: from 0 a step of 1.0 overshoots to where the loss is lower than at the start
    def bump(values):
        return -(values['d'] - 0.3).pow(2).sum(-1, keepdim=True)

    result = pgd_attack(bump, {'d': torch.zeros(1)}, {'d': AdversaryBall('linf', 1.)}, steps=2, step_size=1.)
    assert result.losses[1] < result.losses[0]
    assert torch.equal(result.values['d'], torch.zeros(1)) and torch.equal(result.chosen, result.start)
    last = pgd_attack(bump, {'d': torch.zeros(1)}, {'d': AdversaryBall('linf', 1.)}, steps=2, step_size=1.,
                      select='last')
    assert last.chosen is None and len(last.losses) == 2  # the last iterate is returned unevaluated


def test_start_values_and_uniform_points_of_the_ball():
    params = {'a': adversary_parameter(4, 'l2', 3.), 'b': adversary_parameter(2, 'linf', 0.5)}
    with torch.no_grad():
        params['b'].fill_(0.25)
    g = torch.Generator().manual_seed(0)
    zero, rand, cur = (start_values(params, s, 5, g) for s in ('zero', 'random', 'current'))
    assert zero['a'].shape == (5, 4) and not zero['a'].any()
    assert torch.equal(cur['b'], torch.full((5, 2), 0.25))
    assert (adversary_norm(rand['a'], params['a'].adv_ball, 1) <= 3. + 1e-5).all()
    with pytest.raises(ValueError, match="attack start must be one of"):
        start_values(params, 'warm')
    # uniform in an l2 ball of n = 4 dims: P(radius < eps / 2) = 0.5 ** 4
    pts = uniform_in_ball((20000, 4), AdversaryBall('l2', 1.), 1, torch.Generator().manual_seed(1))
    inner = (pts.norm(dim=1) < 0.5).float().mean().item()
    assert abs(inner - 0.5**4) < 0.01 and pts.norm(dim=1).max() <= 1.
    cube = uniform_in_ball((20000, 2), AdversaryBall('linf', 2.), 1, torch.Generator().manual_seed(2))
    assert cube.abs().max() <= 2. and abs(cube.abs().mean().item() - 1.) < 0.02


def test_pgd_step_of_per_sample_values_projects_each_row():
    v = torch.tensor([[3., 4.], [0.3, 0.4]])
    pgd_step_(v, torch.zeros(2, 2), 0.5, AdversaryBall('l2', 1.), batch_dims=1)
    torch.testing.assert_close(v, torch.tensor([[0.6, 0.8], [0.3, 0.4]]))
    assert math.isclose(float(adversary_norm(v, AdversaryBall('linf', 1.))), 0.8, rel_tol=1e-6)


@pytest.mark.parametrize('kwargs, match', [(dict(steps=0), 'steps must be an integer >= 1'),
                                           (dict(step_size=0.), 'step_size must be > 0'),
                                           (dict(select='first'), 'select must be one of')])
def test_bad_attack_settings_are_named(kwargs, match):
    args = dict(steps=1, step_size=0.5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        pgd_attack(linear_losses, {'d': torch.zeros(2)}, {'d': AdversaryBall('l2', 1.)}, **args)
