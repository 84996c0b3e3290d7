"""bf16 autocast is the pretraining default; its unit static loss scale steps the weights and the adversary
exactly as fp16's dynamic scale does, and an overflowing step is skipped, adversary included, under both."""
import copy
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from conftest import REPO_ROOT
from test_adversarial_optim_wrapper import ToyModel, batch, build, mse

# What the configs say (bf16) and the documented fp16 override, as AmpAdvOptimWrapper kwargs. On CPU the
# wrapper autocasts to bfloat16 only, so the fp16 setting keeps its loss scale there and drops the dtype: the
# two settings then differ exactly in what the wrapper does with the scale, which is what is compared here
# (the losses below are computed outside autocast, so the dtype does not enter them).
BF16 = dict(dtype='bfloat16', loss_scale=1.0)
FP16 = dict(dtype='float16' if torch.cuda.is_available() else None, loss_scale='dynamic')
DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'
PRETRAIN = sorted(p for folder in ('mae', 'mae_plus', 'adpe', 'fgsm')
                  for p in glob.glob(osp.join(REPO_ROOT, 'configs', folder, '**', '*.py'), recursive=True)
                  if '/_base_/' not in p and 'tiny' not in p)


def test_every_full_size_pretraining_config_autocasts_to_bf16_without_scaling():
    assert len(PRETRAIN) > 40
    for path in PRETRAIN:
        ow = Config.fromfile(path).optim_wrapper
        assert ow.type in ('AmpOptimWrapper', 'AmpAdvOptimWrapper'), path
        assert ow.dtype == 'bfloat16' and ow.loss_scale == 1.0, path


def test_the_fp16_override_gives_fp16_autocast_with_dynamic_scaling():
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'adpe', 'vitb_rpe_coord_1600e.py'))
    cfg.merge_from_dict({'optim_wrapper.dtype': 'float16', 'optim_wrapper.loss_scale': 'dynamic'})
    assert cfg.optim_wrapper.type == 'AmpAdvOptimWrapper'
    assert (cfg.optim_wrapper.dtype, cfg.optim_wrapper.loss_scale) == ('float16', 'dynamic')


def amp_pair(**kwargs):
    """The same toy model and AdamW under the bf16 and the fp16 setting."""
    models = [ToyModel(eps=10.).to(DEVICE) for _ in range(2)]
    wrappers = [build(m, type='AmpAdvOptimWrapper', optimizer=dict(type='AdamW', lr=0.1, weight_decay=0.05),
                      custom_keys={'adv_': dict(decay_mult=0., maximize=True)}, **setting, **kwargs)
                for m, setting in zip(models, (BF16, FP16))]
    return models, wrappers


def test_bf16_setting_does_not_scale_the_loss_and_fp16_does():
    _, (bf16, fp16) = amp_pair()
    assert bf16.loss_scaler.get_scale() == 1.0 and fp16.loss_scaler.get_scale() == 2.0**16


@pytest.mark.parametrize('adv_update,transform', [('optimizer', None), ('optimizer', 'sign'),
                                                  ('ascent', 'sign'), ('ascent', 'l2_normalize')])
def test_weights_and_adversary_step_identically_under_both_settings(adv_update, transform):
    models, wrappers = amp_pair(adv_update=adv_update, adv_grad_transform=transform)
    x, y = batch(8, device=DEVICE)
    start = copy.deepcopy(models[0].state_dict())
    for _ in range(3):
        for model, wrapper in zip(models, wrappers):
            wrapper.update_params(mse(model, x, y))
    # scaling by 2^16 and unscaling is exact in float32, so the steps agree bit for bit
    for key, value in models[0].state_dict().items():
        assert torch.equal(value, models[1].state_dict()[key]), key
        assert not torch.equal(value, start[key]), key  # and every parameter moved


@pytest.mark.parametrize('adv_update', ['optimizer', 'ascent'])
def test_an_overflowing_step_is_skipped_adversary_included_under_both_settings(adv_update):
    models, wrappers = amp_pair(adv_update=adv_update, adv_grad_transform='sign')
    x, y = batch(8, device=DEVICE)
    for model, wrapper in zip(models, wrappers):
        before = copy.deepcopy(model.state_dict())
        overflow = model.linear.weight.register_hook(lambda g: torch.full_like(g, math.inf))
        wrapper.update_params(mse(model, x, y))
        overflow.remove()
        for key, value in model.state_dict().items():
            assert torch.equal(value, before[key]), key
    assert wrappers[0].loss_scaler.get_scale() == 1.0  # static: the bf16 scale stays 1
    assert wrappers[1].loss_scaler.get_scale() == 2.0**15  # dynamic: fp16 halves its scale


def test_bf16_autocast_loss_and_adversary_gradient_agree_with_float32():
    model = ToyModel(eps=10.).to(DEVICE)
    wrapper = build(model, type='AmpAdvOptimWrapper', optimizer=dict(type='AdamW', lr=0.1), **BF16)
    x, y = batch(64, device=DEVICE)
    grads = []
    for amp in (False, True):
        model.zero_grad()
        if amp:
            with wrapper.optim_context(model):
                loss = mse(model, x, y)
        else:
            loss = mse(model, x, y)
        loss.backward()
        grads.append((loss.detach().float(), model.adv_delta.grad.clone()))
    (loss32, g32), (loss16, g16) = grads
    torch.testing.assert_close(loss16, loss32, rtol=2e-2, atol=0)  # bf16: 8 mantissa bits
    torch.testing.assert_close(g16, g32, rtol=3e-2, atol=3e-2 * g32.abs().max().item())
