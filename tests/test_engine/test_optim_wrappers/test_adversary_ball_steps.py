"""adv_ball_steps: the adversary's step in units of its own ball, next to the paper's rule (adversary lr =
weight lr)."""
import pytest
import torch
from mmengine.optim import LinearLR, build_optim_wrapper
from mmengine.registry import DefaultScope
from torch import nn

from adpe_mm.adversary import adversary_parameter


class Toy(nn.Module):
    def __init__(self, norm='l2', eps=3.0, second_eps=None):
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.adv_delta = adversary_parameter(4, norm, eps)
        if second_eps is not None:
            self.adv_other = adversary_parameter(2, norm, second_eps)


def build(model, lr=1e-3, lr_mult=1.0, type='AdvOptimWrapper', **kwargs):
    cfg = dict(type=type, optimizer=dict(type='AdamW', lr=lr, weight_decay=0.05),
               paramwise_cfg=dict(custom_keys={'adv_': dict(decay_mult=0., maximize=True, lr_mult=lr_mult)}),
               **kwargs)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return build_optim_wrapper(model, cfg)


def group_lrs(wrapper, model):
    adv, = [g['lr'] for g in wrapper.optimizer.param_groups if g['params'][0] is model.adv_delta]
    weights = [g['lr'] for g in wrapper.optimizer.param_groups if g['params'][0] is not model.adv_delta]
    return adv, weights


def test_the_papers_rule_is_the_default_adversary_lr_equals_weight_lr_times_lr_mult():
    model = Toy(eps=3.)
    adv, weights = group_lrs(build(model, lr=1e-3, lr_mult=0.5), model)
    assert adv == pytest.approx(5e-4) and weights == [pytest.approx(1e-3)] * len(weights)


@pytest.mark.parametrize('eps,steps,lr_mult', [(3., 10, 1.0), (3., 10, 0.5), (20., 40, 1.0), (7., 5, 0.)])
def test_ball_steps_set_the_adversary_lr_to_lr_mult_eps_over_n_and_leave_the_weights(eps, steps, lr_mult):
    model = Toy(eps=eps)
    adv, weights = group_lrs(build(model, lr=1e-3, lr_mult=lr_mult, adv_ball_steps=steps), model)
    assert adv == pytest.approx(lr_mult * eps / steps)  # e.g. 3 / 10 = 0.3 (300x the weights' 1e-3)
    assert weights == [pytest.approx(1e-3)] * len(weights)


@pytest.mark.parametrize('norm', ['l2', 'linf'])
def test_pgd_in_the_ball_crosses_it_in_n_steps_and_stays_on_it(norm):
    model = Toy(norm, eps=3.)
    wrapper = build(model, adv_ball_steps=10, adv_update='ascent', adv_grad_transform='ball')
    grad = torch.tensor([3., 0., -4., 0.])
    # l2: the step is 0.3 along g / |g| = (0.6, 0, -0.8, 0); l_inf: 0.3 along sign(g) on each moving coordinate
    unit = grad / 5. if norm == 'l2' else grad.sign()
    for k in range(1, 13):
        model.adv_delta.grad = grad.clone()
        wrapper.step()
        torch.testing.assert_close(model.adv_delta.detach(), min(k, 10) * 0.3 * unit)
    size = model.adv_delta.norm() if norm == 'l2' else model.adv_delta.abs().max()
    assert size.item() == pytest.approx(3.)


def test_the_ball_lr_follows_the_weights_schedule():
    model = Toy(eps=3.)
    wrapper = build(model, lr=1e-3, adv_ball_steps=10)
    LinearLR(wrapper, start_factor=0.1, by_epoch=False, begin=0, end=5)  # warmup from 10% of the peak
    adv, weights = group_lrs(wrapper, model)
    assert adv == pytest.approx(0.1 * 0.3) and weights == [pytest.approx(1e-4)] * len(weights)


def test_the_amp_wrapper_takes_ball_steps_too():
    model = Toy(eps=5.)
    adv, _ = group_lrs(build(model, type='AmpAdvOptimWrapper', adv_ball_steps=20), model)
    assert adv == pytest.approx(0.25)


def test_the_ball_transform_is_the_steepest_direction_of_each_ball():
    from adpe_mm.engine.optim_wrappers.adversarial_optim_wrapper import transform_adversary_grad_
    g = torch.tensor([3., -4.])
    assert torch.equal(transform_adversary_grad_(g.clone(), 'ball', 'linf'), torch.tensor([1., -1.]))
    torch.testing.assert_close(transform_adversary_grad_(g.clone(), 'ball', 'l2'), torch.tensor([0.6, -0.8]))


@pytest.mark.parametrize('steps', [0, -3, 2.5, True])
def test_bad_ball_steps_are_refused_naming_the_value(steps):
    with pytest.raises(ValueError, match=f'adv_ball_steps.*{steps!r}'):
        build(Toy(), adv_ball_steps=steps)


def test_one_group_with_two_radii_is_refused_naming_them():
    from adpe_mm.engine.optim_wrappers import AdvOptimWrapper
    model = Toy(eps=3., second_eps=2.)  # (the config constructor gives every parameter its own group)
    optimizer = torch.optim.AdamW([dict(params=[model.adv_delta, model.adv_other], maximize=True, weight_decay=0.),
                                   dict(params=list(model.linear.parameters()))], lr=1e-3)
    with pytest.raises(ValueError, match=r'eps \[2\.0, 3\.0\]'):
        AdvOptimWrapper(optimizer, adv_ball_steps=10)
