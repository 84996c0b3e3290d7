"""Tiny MAE+ / AdPE models for the model tests (CPU, a second per forward/backward)."""
import logging

import torch
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope

import adpe_mm  # noqa: F401  (registers the components)
from mmpretrain.registry import MODELS

TINY_ARCH = dict(embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=128)
MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]
ADVERSARIES = {
    'ape-embed': dict(pe='ape', mode='embed', norm='l2', eps=3.),
    'ape-coord': dict(pe='ape', mode='coord', norm='linf', eps=3.),
    'rpe-embed': dict(pe='rpe', mode='embed', norm='l2', eps=5.),
    'rpe-coord': dict(pe='rpe', mode='coord', norm='linf', eps=20.),
}


def quiet():
    MMLogger.get_instance('mmengine').setLevel(logging.WARNING)


def tiny_mae_plus(adversary=None, rpe=None, img_size=112, **kwargs):
    """A tiny MAEPlus with MAE's initialisation (iRPE tables zero, adversaries zero)."""
    quiet()
    if rpe is None and adversary is not None and adversary['pe'] == 'rpe':
        rpe = dict(ratio=1.9)
    cfg = dict(
        type='MAEPlus',
        adversary=adversary,
        data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=MEAN, std=STD, to_rgb=True),
        backbone=dict(type='MAEPlusViT', arch=TINY_ARCH, img_size=img_size, rpe=rpe),
        neck=dict(type='MAEPlusDecoder', num_patches=(img_size // 16)**2, embed_dim=64, decoder_embed_dim=32,
                  decoder_depth=2, decoder_num_heads=4, rpe=rpe),
        head=dict(type='MAEPretrainHead', norm_pix=True, patch_size=16,
                  loss=dict(type='PixelReconstructionLoss', criterion='L2')),
        **kwargs)
    with DefaultScope.overwrite_default_scope('mmpretrain'):  # whatever scope an earlier test (mmseg) left
        model = MODELS.build(cfg)
    model.init_weights()
    return model


def randomise_tables(model, std=0.5, seed=0):
    """Give every iRPE table non-zero values (they start at zero, where coordinates have no effect)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('lookup_table'):
                p.copy_(torch.randn(p.shape, generator=g) * std)


def adversaries(model):
    return {n: p for n, p in model.named_parameters() if n.rsplit('.', 1)[-1].startswith('adv_')}
