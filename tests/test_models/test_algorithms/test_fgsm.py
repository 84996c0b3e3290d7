"""MAEPlusFGSM: the l_inf FGSM baseline of App. B on MAE+."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from _tiny import quiet
from mmpretrain.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
TINY_CONFIG = osp.join(REPO, 'configs', 'fgsm', 'maeplus-fgsm-linf-eps0.01_vit-tiny-p16_4x112-1xb8-300iter_embedded.py')
TABLE_A1 = {
    eps: osp.join(REPO, 'configs', 'fgsm',
                  f'maeplus-fgsm-linf-eps{eps}_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py')
    for eps in ('0.001', '0.01', '0.1')
}


def tiny_fgsm(eps=0.01):
    """The tiny FGSM config's model, shrunk to a 32-d 1-block encoder, with MAE's init fixed by a seed."""
    quiet()
    torch.manual_seed(0)
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.merge_from_dict({
        'model.eps': eps,
        'model.backbone.arch': dict(embed_dims=32, num_layers=1, num_heads=2, feedforward_channels=64),
        'model.neck.embed_dim': 32,
        'model.neck.decoder_embed_dim': 16,
        'model.neck.decoder_depth': 1,
        'model.neck.decoder_num_heads': 2,
    })
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def crops_and_mask(model, n=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    crops = torch.randn(n, 3, 112, 112, generator=g)  # normalised pixels
    return crops, model.backbone.random_masking(n, crops.device, torch.Generator().manual_seed(seed))


def pixel_mask(mask, p=16, side=7):
    """Patch mask [B, N] -> pixel mask [B, 1, side*p, side*p]."""
    m = mask.float().reshape(-1, 1, side, side)
    return m.repeat_interleave(p, dim=2).repeat_interleave(p, dim=3)


@pytest.mark.parametrize('eps', [0.001, 0.01, 0.1])
def test_perturbation_linf_norm_is_exactly_eps(eps):
    model = tiny_fgsm(eps)
    crops, mask = crops_and_mask(model)
    delta, _ = model.fgsm_perturbation(crops, mask)
    assert delta.abs().max().item() == torch.tensor(eps, dtype=delta.dtype).item()


def test_every_visible_pixel_moves_by_eps_and_masked_pixels_stay():
    model = tiny_fgsm(0.01)
    crops, mask = crops_and_mask(model)
    delta, _ = model.fgsm_perturbation(crops, mask)
    masked = pixel_mask(mask).expand_as(delta).bool()
    assert torch.all(delta[~masked].abs() == torch.tensor(0.01))
    assert torch.all(delta[masked] == 0)


def test_perturbation_raises_the_loss_of_a_fixed_model():
    model = tiny_fgsm(0.01).eval()
    crops, mask = crops_and_mask(model)
    delta, clean = model.fgsm_perturbation(crops, mask)
    with torch.no_grad():
        pred, used = model.reconstruct(crops + delta, patch_mask=mask)
        attacked = model.head.loss(pred, crops, used)
    assert attacked > clean


def test_input_gradient_pass_leaves_weight_gradients_untouched():
    model = tiny_fgsm()
    crops, mask = crops_and_mask(model)
    model.fgsm_perturbation(crops, mask)
    assert all(p.grad is None for p in model.parameters())


def test_attack_and_training_pass_use_the_same_mask():
    model = tiny_fgsm()
    masks = []
    reconstruct = model.reconstruct

    def recording(crops, adversarial=True, patch_mask=None):
        masks.append(patch_mask.clone())
        return reconstruct(crops, adversarial=adversarial, patch_mask=patch_mask)

    model.reconstruct = recording
    crops, _ = crops_and_mask(model)
    model.loss([crops[:2], crops[2:]], None)
    assert len(masks) == 2 and torch.equal(masks[0], masks[1])


def test_loss_reconstructs_the_clean_crops_from_the_perturbed_ones():
    model = tiny_fgsm(0.1).eval()
    crops, _ = crops_and_mask(model)
    loss = model.loss([crops], None)['loss']
    model.mask_step.sub_(1)  # replay the mask of that forward
    mask = model.draw_mask(crops.shape[0], crops.device)
    delta, _ = model.fgsm_perturbation(crops, mask)
    pred, used = model.reconstruct(crops + delta, patch_mask=mask)
    assert torch.allclose(loss, model.head.loss(pred, crops, used))


def test_loss_logs_the_attack_gap():
    model = tiny_fgsm(0.01).eval()
    crops, _ = crops_and_mask(model)
    losses = model.loss([crops], None)
    assert losses['adv_gap'] > 0 and not losses['adv_gap'].requires_grad


@pytest.mark.parametrize('eps', [0, -0.01, math.nan, math.inf, True])
def test_eps_must_be_a_positive_finite_number(eps):
    with pytest.raises(ValueError, match='eps'):
        tiny_fgsm(eps)


def test_train_step_updates_the_weights_with_a_plain_optimizer_wrapper():
    model = tiny_fgsm()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    before = model.backbone.patch_embed.projection.weight.detach().clone()
    crops = torch.randint(0, 256, (2, 3, 112, 112), dtype=torch.uint8)
    model.train_step(dict(inputs=[crops, crops.flip(-1)], data_samples=None), wrapper)
    assert not torch.equal(before, model.backbone.patch_embed.projection.weight)


@pytest.mark.parametrize('eps', sorted(TABLE_A1))
def test_table_a1_config_is_the_mae_plus_400e_config_with_fgsm(eps):
    cfg = Config.fromfile(TABLE_A1[eps])
    base = Config.fromfile(
        osp.join(REPO, 'configs', 'mae_plus', 'maeplus_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py'))
    assert (cfg.model.type, cfg.model.eps) == ('MAEPlusFGSM', float(eps))
    assert {k: v for k, v in cfg.model.items() if k not in ('type', 'eps')} == \
        {k: v for k, v in base.model.items() if k != 'type'}
    assert (cfg.train_cfg, cfg.optim_wrapper) == (base.train_cfg, base.optim_wrapper)
