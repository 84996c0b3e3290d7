"""AdvOptimWrapper / AmpAdvOptimWrapper, built through the config path (DefaultOptimWrapperConstructor)."""
import copy
import math

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from torch import nn

from adpe_mm.adversary import adversary_norm, adversary_parameter
from adpe_mm.engine.optim_wrappers import AdvOptimWrapper, AmpAdvOptimWrapper

ADV_KEYS = {'adv_': dict(decay_mult=0., maximize=True)}
# AmpAdvOptimWrapper uses mmengine's CUDA GradScaler where there is a GPU, so AMP tests run there
AMP_DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'


class ToyModel(nn.Module):
    """``linear(x + adv_delta)``: the adversary shifts every input by the same 4-vector."""

    def __init__(self, norm='l2', eps=1.0, with_adversary=True):
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(4, 1)
        if with_adversary:
            self.adv_delta = adversary_parameter(4, norm, eps)

    def forward(self, x):  # x: [N, 4] -> [N, 1]
        delta = getattr(self, 'adv_delta', None)
        return self.linear(x if delta is None else x + delta)


def mse(model, x, y):
    return ((model(x) - y)**2).mean()


def batch(n, seed=1, device='cpu'):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g).to(device), torch.randn(n, 1, generator=g).to(device)


def build(model, type='AdvOptimWrapper', optimizer=None, custom_keys=ADV_KEYS, **kwargs):
    optimizer = dict(optimizer or dict(type='SGD', lr=0.1))
    optimizer.setdefault('weight_decay', 0.)  # mmengine refuses decay_mult without a base weight decay
    cfg = dict(type=type, optimizer=optimizer, **kwargs)
    if custom_keys is not None:
        cfg['paramwise_cfg'] = dict(custom_keys=custom_keys)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return build_optim_wrapper(model, cfg)


def test_custom_keys_give_the_adversary_an_ascending_decay_free_group():
    model = ToyModel()
    wrapper = build(model, optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
    adv_group, = [g for g in wrapper.optimizer.param_groups if g['params'][0] is model.adv_delta]
    assert adv_group['maximize'] is True and adv_group['weight_decay'] == 0
    assert isinstance(wrapper, AdvOptimWrapper) and wrapper.adversaries == [model.adv_delta]


def test_adversary_ascends_while_weights_descend():
    model = ToyModel(eps=100.)  # large ball: no projection in one step
    wrapper = build(model, optimizer=dict(type='SGD', lr=0.1))
    x = torch.randn(8, 4)
    old_linear = copy.deepcopy(model.linear.state_dict())
    w0 = old_linear['weight']
    loss_fn = lambda: model(x).mean()  # noqa: E731  d/d delta = w, d/d w = mean(x) + delta
    before = loss_fn().item()
    wrapper.update_params(loss_fn())
    torch.testing.assert_close(model.adv_delta.detach(), 0.1 * w0[0])  # +lr * grad
    torch.testing.assert_close(model.linear.weight.detach(), w0 - 0.1 * x.mean(0, keepdim=True))
    new_linear = copy.deepcopy(model.linear.state_dict())
    with torch.no_grad():
        model.linear.load_state_dict(old_linear)
        assert loss_fn().item() > before  # new adversary, old weights
        model.linear.load_state_dict(new_linear)
        model.adv_delta.zero_()
        assert loss_fn().item() < before  # old adversary, new weights


@settings(max_examples=60, deadline=None)
@given(
    norm=st.sampled_from(['l2', 'linf']),
    eps=st.floats(1e-3, 1e3),
    optimizer=st.sampled_from(['SGD', 'AdamW']),
    adv_update=st.sampled_from(['optimizer', 'ascent']),
    transform=st.sampled_from([None, 'sign', 'l2_normalize']),
    steps=st.lists(
        st.tuples(st.lists(st.floats(-1e30, 1e30), min_size=4, max_size=4), st.floats(0, 1e6)),
        min_size=1, max_size=5))
@example(norm='l2', eps=1.0, optimizer='SGD', adv_update='optimizer', transform=None,
         steps=[([0., 0., 0., 0.], 1.0)])
@example(norm='l2', eps=1.0, optimizer='AdamW', adv_update='optimizer', transform='l2_normalize',
         steps=[([0., 0., 0., 0.], 1e6)])
def test_adversary_stays_in_its_ball_after_any_steps(norm, eps, optimizer, adv_update, transform, steps):
    model = ToyModel(norm, eps)
    wrapper = build(model, optimizer=dict(type=optimizer, lr=1.0), adv_update=adv_update,
                    adv_grad_transform=transform)
    for grad, lr in steps:
        for group in wrapper.optimizer.param_groups:
            group['lr'] = lr
        model.adv_delta.grad = torch.tensor(grad)
        wrapper.step()
        assert torch.isfinite(model.adv_delta).all()
        assert adversary_norm(model.adv_delta) <= eps * (1 + 1e-5)


def test_accumulating_two_half_batches_equals_one_full_batch():
    x, y = batch(8)
    models = [ToyModel(eps=0.05), ToyModel(eps=0.05)]
    adamw = dict(type='AdamW', lr=0.01, weight_decay=0.05)
    accumulating = build(models[0], optimizer=adamw, accumulative_counts=2)
    full = build(models[1], optimizer=adamw)
    for _ in range(3):
        accumulating.update_params(mse(models[0], x[:4], y[:4]))
        accumulating.update_params(mse(models[0], x[4:], y[4:]))
        full.update_params(mse(models[1], x, y))
    for p_acc, p_full in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(p_acc, p_full)
    assert models[0].adv_delta.abs().sum() > 0


@pytest.mark.parametrize('adv_update', ['optimizer', 'ascent'])
def test_amp_overflow_step_skips_weights_and_adversary(adv_update):
    model = ToyModel(eps=10.).to(AMP_DEVICE)
    wrapper = build(model, type='AmpAdvOptimWrapper', optimizer=dict(type='AdamW', lr=0.1),
                    adv_update=adv_update, adv_grad_transform='sign')
    x, y = batch(8, device=AMP_DEVICE)
    before = copy.deepcopy(model.state_dict())
    scale = wrapper.loss_scaler.get_scale()
    overflow = model.linear.weight.register_hook(lambda g: torch.full_like(g, math.inf))
    with wrapper.optim_context(model):
        loss = mse(model, x, y)
    wrapper.update_params(loss)
    overflow.remove()
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert wrapper.loss_scaler.get_scale() < scale


@pytest.mark.parametrize('adv_update', ['optimizer', 'ascent'])
def test_amp_step_after_an_overflow_moves_weights_and_adversary(adv_update):
    model = ToyModel(eps=10.).to(AMP_DEVICE)
    wrapper = build(model, type='AmpAdvOptimWrapper', optimizer=dict(type='AdamW', lr=0.1),
                    adv_update=adv_update, adv_grad_transform='sign')
    x, y = batch(8, device=AMP_DEVICE)
    before = copy.deepcopy(model.state_dict())
    overflow = model.linear.weight.register_hook(lambda g: torch.full_like(g, math.inf))
    with wrapper.optim_context(model):
        wrapper.update_params(mse(model, x, y))
    overflow.remove()
    with wrapper.optim_context(model):
        wrapper.update_params(mse(model, x, y))
    for key, value in model.state_dict().items():
        assert not torch.equal(value, before[key]), key


def test_clip_grad_clips_the_weights_but_not_the_adversary():
    model = ToyModel(eps=10.)
    wrapper = build(model, clip_grad=dict(max_norm=1.0))
    for p in model.parameters():
        p.grad = torch.full_like(p, 100.)
    wrapper.step()
    assert torch.equal(model.adv_delta.grad, torch.full((4, ), 100.))
    weight_grads = torch.cat([model.linear.weight.grad.flatten(), model.linear.bias.grad])
    torch.testing.assert_close(weight_grads.norm(), torch.tensor(1.0))


def test_sign_transform_with_ascent_update_is_signed_pgd():
    model = ToyModel('linf', eps=0.25)
    wrapper = build(model, optimizer=dict(type='AdamW', lr=0.1),
                    custom_keys={'adv_': dict(decay_mult=0., maximize=True, lr_mult=2.0)},
                    adv_grad_transform='sign', adv_update='ascent')
    grad = torch.tensor([3., -1e-6, 0., 5.])
    for expected in ([0.2, -0.2, 0., 0.2], [0.25, -0.25, 0., 0.25]):  # step 2 * lr, then clamp to eps
        model.adv_delta.grad = grad.clone()
        wrapper.step()
        torch.testing.assert_close(model.adv_delta.detach(), torch.tensor(expected))
    assert model.adv_delta not in wrapper.optimizer.state  # no AdamW moments for a PGD adversary


def test_l2_normalize_transform_steps_lr_along_the_gradient_direction():
    model = ToyModel('l2', eps=10.)
    wrapper = build(model, adv_grad_transform='l2_normalize', adv_update='ascent')
    model.adv_delta.grad = torch.tensor([3., 0., 4., 0.])
    wrapper.step()
    torch.testing.assert_close(model.adv_delta.detach(), torch.tensor([0.06, 0., 0.08, 0.]))


def test_model_without_adversaries_is_a_value_error_naming_adv():
    with pytest.raises(ValueError, match='no adv_ parameters'):
        build(ToyModel(with_adversary=False))


def test_adversary_group_without_maximize_is_a_value_error():
    with pytest.raises(ValueError, match='param group 0 .*maximize=True'):
        build(ToyModel(), custom_keys={'adv_': dict(decay_mult=0.)})


def test_adversary_group_with_weight_decay_is_a_value_error():
    with pytest.raises(ValueError, match='weight_decay=0.05'):
        build(ToyModel(), optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
              custom_keys={'adv_': dict(maximize=True)})


def test_adversary_sharing_a_group_with_weights_is_a_value_error():
    model = ToyModel()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, maximize=True)
    with pytest.raises(ValueError, match='mixes adversaries with 2 ordinary'):
        AdvOptimWrapper(optimizer)


def test_ordinary_parameter_that_ascends_is_a_value_error():
    keys = dict(ADV_KEYS, bias=dict(maximize=True))
    with pytest.raises(ValueError, match='param group 2 has maximize=True'):
        build(ToyModel(), custom_keys=keys)


@pytest.mark.parametrize('type', ['AdvOptimWrapper', 'AmpAdvOptimWrapper'])
def test_state_dict_round_trip_gives_a_bit_identical_next_step(type):
    x, y = batch(8, device=AMP_DEVICE)
    adamw = dict(type='AdamW', lr=0.01, weight_decay=0.05)
    model = ToyModel(eps=0.05).to(AMP_DEVICE)
    wrapper = build(model, type=type, optimizer=adamw)
    for _ in range(2):
        wrapper.update_params(mse(model, x, y))
    saved_model, saved_optim = copy.deepcopy(model.state_dict()), copy.deepcopy(wrapper.state_dict())
    assert model.adv_delta in wrapper.optimizer.state  # the adversary's moments are part of it
    fresh = ToyModel(eps=0.05).to(AMP_DEVICE)
    fresh.load_state_dict(saved_model)
    fresh_wrapper = build(fresh, type=type, optimizer=adamw)
    fresh_wrapper.load_state_dict(saved_optim)
    wrapper.update_params(mse(model, x, y))
    fresh_wrapper.update_params(mse(fresh, x, y))
    for key, value in model.state_dict().items():
        assert torch.equal(value, fresh.state_dict()[key]), key


def test_adversary_stats_report_its_ball_norm_and_group_lr():
    model = ToyModel('linf', eps=1.0)
    wrapper = build(model, custom_keys={'adv_': dict(decay_mult=0., maximize=True, lr_mult=0.5)})
    with torch.no_grad():
        model.adv_delta.copy_(torch.tensor([0.1, -0.7, 0.3, 0.]))
    stats = wrapper.get_adversary_stats()
    assert stats == dict(adv_norm=pytest.approx(0.7), adv_lr=pytest.approx(0.05))


def test_logged_lr_is_a_weight_lr_even_when_the_adversary_group_comes_first():
    model = ToyModel()
    wrapper = build(model, custom_keys={'adv_': dict(decay_mult=0., maximize=True, lr_mult=0.5)})
    assert wrapper.optimizer.param_groups[0]['params'] == [model.adv_delta]
    assert wrapper.get_lr()['lr'] == [pytest.approx(0.1), pytest.approx(0.1), pytest.approx(0.05)]


def test_amp_wrapper_builds_on_cpu_with_a_cpu_grad_scaler():
    wrapper = build(ToyModel(), type='AmpAdvOptimWrapper', loss_scale=512.)
    assert isinstance(wrapper, AmpAdvOptimWrapper)
    if not torch.cuda.is_available():
        assert wrapper.loss_scaler.get_scale() == 512.
