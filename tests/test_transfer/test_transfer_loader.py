"""load_pretrained_encoder: what it keeps, drops, resizes and refuses, on checkpoints of our own AdPE runs."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.models.utils import resize_pos_embed

import adpe_mm  # noqa: F401
from adpe_mm.models.backbones import IRPEViT, MAEPlusViT
from adpe_mm.models.backbones.pretrained import load_pretrained_encoder
from conftest import REPO_ROOT
from transfer_helpers import TINY_ARCH
from transfer_helpers import ckpts  # noqa: F401  (session fixture: the tiny pretraining checkpoints)


def _state(path):
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


def finetune_backbone(rpe=None, **kwargs):
    """The backbone of configs/finetune at tiny width, built from the config through mmpretrain's registry."""
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(f'{REPO_ROOT}/configs/_base_/models/finetune_vit-base-p16_gap.py').model.backbone
    cfg.update(arch=TINY_ARCH, rpe=rpe, init_cfg=None, **kwargs)
    return MODELS.build(cfg)


def test_ape_encoder_loads_with_nothing_missing_and_exactly_the_pretraining_extras_dropped(ckpts):
    state = _state(ckpts['ape'])
    backbone = finetune_backbone()
    report = load_pretrained_encoder(backbone, ckpts['ape'])
    assert any(k.startswith('neck.decoder') for k in state), 'the pretraining checkpoint should hold the decoder'
    outside = {k for k in state if not k.startswith('backbone.')}  # decoder, algorithm buffers
    # global pooling replaces the final LN by a new one (MAE's fc_norm)
    assert set(report.dropped) == outside | {'backbone.mask_token', 'backbone.adv_embed', 'backbone.ln1.weight',
                                             'backbone.ln1.bias'}
    assert report.missing == []
    assert report.fresh == ['ln2.weight', 'ln2.bias']
    assert torch.equal(backbone.layers[3].ffn.layers[1].weight, state['backbone.layers.3.ffn.layers.1.weight'])
    assert torch.equal(backbone.patch_embed.projection.weight, state['backbone.patch_embed.projection.weight'])


def test_pos_embed_is_resized_bicubically_from_7x7_to_the_target_grid_and_stays_learnable(ckpts):
    state = _state(ckpts['ape'])
    backbone = finetune_backbone()  # 224 px -> 14 x 14
    report = load_pretrained_encoder(backbone, ckpts['ape'])
    assert report.resized == {'pos_embed': ((1, 50, 128), (1, 197, 128))}
    expected = resize_pos_embed(state['backbone.pos_embed'], (7, 7), (14, 14), 'bicubic', 1)
    torch.testing.assert_close(backbone.pos_embed.data, expected)
    assert backbone.pos_embed.requires_grad


def test_irpe_tables_and_recorded_index_mode_transfer(ckpts):
    state = _state(ckpts['rpe'])
    backbone = finetune_backbone(rpe=dict(ratio=1.9, index_mode='relaxed'))
    report = load_pretrained_encoder(backbone, ckpts['rpe'])
    assert report.rpe == dict(index_mode='relaxed', ratio=1.9)
    assert report.missing == []
    for i, layer in enumerate(backbone.layers):
        assert layer.attn.rpe.index_mode == 'relaxed'
        assert torch.equal(layer.attn.rpe.lookup_table, state[f'backbone.layers.{i}.attn.rpe.lookup_table'])
        assert f'backbone.layers.{i}.attn.rpe.adv_coord' in report.dropped
    assert torch.count_nonzero(backbone.layers[0].attn.rpe.lookup_table) > 0, 'tables should have trained'


def test_a_backbone_with_the_other_index_mode_is_refused(ckpts):
    backbone = finetune_backbone(rpe=dict(ratio=1.9, index_mode='integer'))
    with pytest.raises(ValueError, match='index_mode'):
        load_pretrained_encoder(backbone, ckpts['rpe'])


def test_irpe_tables_are_never_dropped_silently(ckpts):
    with pytest.raises(ValueError, match='iRPE tables'):
        load_pretrained_encoder(finetune_backbone(), ckpts['rpe'])


def test_a_load_that_matches_no_backbone_key_is_an_error(ckpts):
    with pytest.raises(ValueError, match='no checkpoint key matches'):
        load_pretrained_encoder(finetune_backbone(), ckpts['ape'], prefix='neck.')
    with pytest.raises(ValueError, match='no checkpoint key matches'):
        load_pretrained_encoder(finetune_backbone(), {'state_dict': {'encoder.blocks.0.w': torch.zeros(1)}})


def test_shape_mismatch_outside_pos_embed_is_an_error(ckpts):
    other = IRPEViT(arch=dict(TINY_ARCH, feedforward_channels=256), img_size=112)
    with pytest.raises(ValueError, match='shape mismatch'):
        load_pretrained_encoder(other, ckpts['ape'])


def test_the_pretraining_encoder_itself_keeps_mask_token_and_adversaries(ckpts):
    state = _state(ckpts['ape'])
    encoder = MAEPlusViT(arch=TINY_ARCH, adversary=dict(pe='ape', mode='embed', norm='l2', eps=3.0))
    report = load_pretrained_encoder(encoder, ckpts['ape'])
    assert torch.equal(encoder.mask_token, state['backbone.mask_token'])
    assert torch.equal(encoder.adv_embed, state['backbone.adv_embed'])
    assert report.missing == [] and not any(k.startswith('backbone.') for k in report.dropped)


def test_report_summary_names_every_group(ckpts):
    report = load_pretrained_encoder(finetune_backbone(), ckpts['ape'])
    text = report.summary()
    assert f'{len(report.loaded)} loaded, {len(report.dropped)} dropped, 0 missing' in text
    assert 'dropped (pretraining only): backbone.mask_token, backbone.adv_embed' in text
    assert 'resized pos_embed: [1, 50, 128] -> [1, 197, 128]' in text


def test_irpevit_init_cfg_pretrained_goes_through_the_checked_loader(ckpts):
    backbone = finetune_backbone()
    backbone.init_cfg = dict(type='Pretrained', checkpoint=ckpts['ape'], prefix='neck.')  # matches nothing
    with pytest.raises(ValueError, match='no checkpoint key matches'):
        backbone.init_weights()
