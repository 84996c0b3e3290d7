"""ADE20K UperNet configs: they build through mmseg's registries at full size with layer decay 0.65 by the
backbone's block depth (our class name has neither "MAE" nor "BEiT"), and at tiny size they load a tiny
AdPE checkpoint, train and report mIoU through tools/train.py and tools/test.py on an ADE-format set of a
real photo with real masks."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import adpe_mm  # noqa: F401
from conftest import REPO_ROOT, run_tool
from transfer_helpers import (PYTHON, TEST, TINY_ARCH, TRAIN, build_ade_set, last_checkpoint, metric_value,
                              write)
from transfer_helpers import ckpts  # noqa: F401  (session fixture: the tiny pretraining checkpoints)

pytest.importorskip('adpe_mm.seg')  # needs mmcv's compiled ops
from adpe_mm.models.backbones.pretrained import load_pretrained_encoder  # noqa: E402

CONFIGS = sorted(glob.glob(osp.join(REPO_ROOT, 'configs', 'seg', '*.py')))
APE_CONFIG, RPE_CONFIG = (osp.join(REPO_ROOT, 'configs', 'seg', name) for name in (
    'upernet_plain-vit-b-p16_8xb2-160k_ade20k-512x512.py', 'upernet_plain-vit-b-p16-rpe_8xb2-160k_ade20k-512x512.py'))

# The real config at tiny size: 128 px crops (8x8 tokens), the outputs of all 4 tiny blocks, 64-channel
# UPerHead; 2 iterations of 2 images, sliding-window evaluation on 2 images.
TINY = """
_base_ = [{config!r}]
crop = (128, 128)
model = dict(
    data_preprocessor=dict(size=crop),
    backbone=dict(arch=dict(_delete_=True, **{arch!r}), img_size=crop, out_indices=(0, 1, 2, 3),
                  init_cfg=dict(checkpoint={ckpt!r})),
    neck=dict(embed_dim={dims}),
    decode_head=dict(in_channels=[{dims}] * 4, channels=64),
    auxiliary_head=dict(in_channels={dims}, channels=32),
    test_cfg=dict(crop_size=crop, stride=(96, 96)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(512, 128), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 128), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={root!r}, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root={root!r}, pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
"""


@pytest.fixture(scope='module')
def ade(tmp_path_factory):
    return build_ade_set(str(tmp_path_factory.mktemp('ade')))


def build(cfg_model):
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    return MODELS.build(cfg_model)


@pytest.mark.parametrize('config', CONFIGS, ids=osp.basename)
def test_config_builds_upernet_with_layer_decay_065_through_stock_registries(config):
    from mmengine.optim import build_optim_wrapper
    import adpe_mm.seg  # noqa: F401  (what the config's custom_imports does)
    cfg = Config.fromfile(config)
    model = build(cfg.model)
    assert type(model).__name__ == 'EncoderDecoder' and type(model.backbone).__name__ == 'PlainViT'
    assert model.backbone.out_indices == (3, 5, 7, 11) and model.backbone.global_indices == tuple(range(12))
    assert (model.backbone.rpe_cfg is not None) == ('-rpe' in osp.basename(config))
    assert cfg.train_dataloader.batch_size * 8 == 16 and cfg.train_cfg.max_iters == 160000
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = {g['param_name']: g for g in wrapper.optimizer.param_groups}
    assert groups['decode_head.conv_seg.weight']['lr'] == pytest.approx(2e-4)
    assert groups['backbone.layers.11.ffn.layers.1.weight']['lr'] == pytest.approx(2e-4 * 0.65)
    assert groups['backbone.layers.0.ffn.layers.1.weight']['lr'] == pytest.approx(2e-4 * 0.65**12)
    assert groups['backbone.pos_embed']['lr'] == pytest.approx(2e-4 * 0.65**13)
    assert groups['backbone.pos_embed']['weight_decay'] == 0
    assert groups['backbone.layers.0.ffn.layers.1.weight']['weight_decay'] == 0.05


@pytest.mark.parametrize('pe', ['ape', 'rpe'])
def test_tiny_upernet_loads_the_adpe_encoder_trains_and_reports_miou(pe, ckpts, ade, tmp_path):
    ckpt = ckpts[pe]
    config = write(str(tmp_path / f'tiny_seg_{pe}.py'), TINY.format(
        config=RPE_CONFIG if pe == 'rpe' else APE_CONFIG, arch=TINY_ARCH, ckpt=ckpt, dims=TINY_ARCH['embed_dims'],
        root=ade['root']))

    import adpe_mm.seg  # noqa: F401
    model = build(Config.fromfile(config).model)
    report = load_pretrained_encoder(model.backbone, ckpt)
    state = torch.load(ckpt, map_location='cpu', weights_only=True)['state_dict']
    expected = {k for k in state if not k.startswith('backbone.') or 'adv_' in k or k.endswith('mask_token')}
    expected |= {'backbone.cls_token', 'backbone.ln1.weight', 'backbone.ln1.bias'}
    assert report.missing == [] and set(report.dropped) == expected
    assert report.resized == {'pos_embed': ((1, 50, 128), (1, 64, 128))}

    train = run_tool([PYTHON, TRAIN, config, '--work-dir', str(tmp_path / 'train')], cwd=str(tmp_path))
    assert f'{len(report.loaded)} loaded, {len(report.dropped)} dropped, 0 missing' in train.stdout
    test = run_tool([PYTHON, TEST, config, last_checkpoint(str(tmp_path / 'train')), '--work-dir',
                     str(tmp_path / 'test')], cwd=str(tmp_path))
    assert 0 <= metric_value(test.stdout, 'mIoU') <= 100
    # per-class accuracy exists exactly for the classes of the real masks (ADE labels read correctly)
    rows = {cells[0]: cells[2] for cells in (
        [c.strip() for c in line.strip().strip('|').split('|')] for line in test.stdout.splitlines()
        if line.startswith('|') and line.count('|') == 4)}
    assert {name for name, acc in rows.items() if acc != 'nan' and name != 'Class'} == set(ade['classes'])
