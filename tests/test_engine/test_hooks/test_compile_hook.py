"""CompileHook: torch.compile (inductor, on CPU) of the encoder and decoder leaves the loss and every gradient,
the adversary's included, as in eager mode, and leaves parameter names alone."""
import copy
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import HOOKS, MODELS

import adpe_mm  # noqa: F401
from conftest import REPO_ROOT

TINY = 'configs/adpe/tiny/adpe-rpe-coord_vit-tiny-p16_4x112-1xb8-300iter_embedded.py'


def tiny_adpe():
    """AdPE RPE coord, shrunk to one encoder and one decoder block (compile time grows with depth)."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, TINY))
    cfg.model.log_adv_gap = False
    cfg.model.adversary_fresh = None  # the persistent adversary: a parameter in the compiled graph
    cfg.model.adversary_steps = 0
    cfg.model.backbone.arch.num_layers = 1
    cfg.model.neck.decoder_depth = 1
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():  # a non-zero adversary and iRPE tables, so their gradients are not trivial
        for name, p in model.named_parameters():
            if 'adv_' in name or 'lookup_table' in name:
                p.uniform_(-0.5, 0.5)
    return model


def loss_and_grads(model):
    g = torch.Generator().manual_seed(1)
    crops = [torch.randint(0, 255, (2, 3, 112, 112), dtype=torch.uint8, generator=g) for _ in range(4)]
    data = model.data_preprocessor(dict(inputs=crops, data_samples=None), True)
    torch.manual_seed(2)  # the same patch mask for both models
    loss = model(**data, mode='loss')['loss']
    model.zero_grad()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def build_hook(**kwargs):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return HOOKS.build(dict(type='CompileHook', **kwargs))


def test_the_schedule_carries_the_switch_off():
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'adpe', 'vitb_rpe_coord_1600e.py'))
    assert cfg.default_hooks.compile == dict(type='CompileHook', enable=False)
    assert build_hook(**{k: v for k, v in cfg.default_hooks.compile.items() if k != 'type'}).enable is False


def test_inductor_compiled_encoder_and_decoder_give_the_eager_loss_and_gradients():
    eager = tiny_adpe()
    compiled = copy.deepcopy(eager)
    build_hook(enable=True, backend='inductor').before_train(SimpleNamespace(model=compiled))
    assert compiled.backbone._compiled_call_impl is not None and compiled.neck._compiled_call_impl is not None
    assert [n for n, _ in compiled.named_parameters()] == [n for n, _ in eager.named_parameters()]
    loss, grads = loss_and_grads(eager)
    loss_c, grads_c = loss_and_grads(compiled)
    torch.testing.assert_close(loss_c, loss, rtol=1e-5, atol=1e-6)
    assert grads.keys() == grads_c.keys() and any('adv_coord' in n for n in grads)
    for name, g in grads.items():
        torch.testing.assert_close(grads_c[name], g, rtol=1e-3, atol=1e-5 * g.abs().max().item() + 1e-8,
                                   msg=name)


def test_disabled_hook_leaves_the_model_eager():
    model = tiny_adpe()
    build_hook().before_train(SimpleNamespace(model=model))
    assert model.backbone._compiled_call_impl is None


def test_a_missing_target_is_a_value_error_naming_it():
    hook = build_hook(enable=True, targets=('backbone', 'decoder'))
    with pytest.raises(ValueError, match=r"\['decoder'\]"):
        hook.before_train(SimpleNamespace(model=tiny_adpe()))
