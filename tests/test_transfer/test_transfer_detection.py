"""COCO Mask R-CNN configs (ViTDet style): they build through mmdet's registries at full size with the
layer-decay constructor, and at tiny size they load a tiny AdPE checkpoint, train and report COCO bbox/segm
AP through tools/train.py and tools/test.py on a COCO-format set of real photos with real masks."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import adpe_mm  # noqa: F401
from conftest import REPO_ROOT, run_tool
from transfer_helpers import (PYTHON, TEST, TINY_ARCH, TRAIN, build_coco_set, last_checkpoint, metric_value,
                              write)
from transfer_helpers import ckpts  # noqa: F401  (session fixture: the tiny pretraining checkpoints)

pytest.importorskip('adpe_mm.det')  # needs mmcv's compiled ops
from adpe_mm.models.backbones.plain_vit import PlainViT  # noqa: E402
from adpe_mm.models.layers import AttentionContext  # noqa: E402
from adpe_mm.models.backbones.pretrained import load_pretrained_encoder  # noqa: E402

CONFIGS = sorted(glob.glob(osp.join(REPO_ROOT, 'configs', 'det', '*.py')))
APE_CONFIG, RPE_CONFIG = (osp.join(REPO_ROOT, 'configs', 'det', name) for name in (
    'mask-rcnn_plain-vit-b-p16_simple-fpn_8xb8-lsj-100e_coco.py',
    'mask-rcnn_plain-vit-b-p16-rpe_simple-fpn_8xb8-lsj-100e_coco.py'))

# The real config at tiny size: 256 px LSJ, a 16x16 token grid in 6x6 windows (padded to 18x18) with
# blocks 1 and 3 global, 64-channel pyramid and heads; 2 iterations of 2 images, evaluation on 2 images.
TINY = """
_base_ = [{config!r}]
image_size = (256, 256)
classes = {classes!r}
model = dict(
    data_preprocessor=dict(batch_augments=[dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)]),
    backbone=dict(arch=dict(_delete_=True, **{arch!r}), img_size=256, window_size=6, global_indices=(1, 3),
                  out_indices=(3, ), init_cfg=dict(checkpoint={ckpt!r})),
    neck=dict(in_channels={dims}, out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=64), mask_roi_extractor=dict(out_channels=64),
                  bbox_head=dict(in_channels=64, conv_out_channels=64, fc_out_channels=128,
                                 num_classes=len(classes)),
                  mask_head=dict(in_channels=64, conv_out_channels=64, num_classes=len(classes))))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size, recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
data = dict(data_root={root!r}, ann_file='annotations/instances.json', data_prefix=dict(img='images/'),
            metainfo=dict(classes=classes))
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data, pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=dict(data, pipeline=test_pipeline, indices=2))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file={ann_file!r})
test_evaluator = val_evaluator
train_cfg = dict(max_iters=2, val_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
"""


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    return build_coco_set(str(tmp_path_factory.mktemp('coco')))


def build(cfg_model):
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    return MODELS.build(cfg_model)


@pytest.mark.parametrize('config', CONFIGS, ids=osp.basename)
def test_config_builds_vitdet_mask_rcnn_with_layer_decay_through_stock_registries(config):
    from mmengine.optim import build_optim_wrapper
    import adpe_mm.det  # noqa: F401  (what the config's custom_imports does)
    cfg = Config.fromfile(config)
    model = build(cfg.model)
    assert type(model).__name__ == 'MaskRCNN' and type(model.backbone).__name__ == 'PlainViT'
    assert model.backbone.global_indices == (2, 5, 8, 11) and model.backbone.window_size == 14
    assert (model.backbone.rpe_cfg is not None) == ('-rpe' in osp.basename(config))
    assert type(model.neck).__name__ == 'SimpleFPN'
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = {g['param_name']: g for g in wrapper.optimizer.param_groups}
    lr = 0.5 * 1e-4
    assert groups['neck.lateral_convs.0.conv.weight']['lr'] == pytest.approx(lr)
    assert groups['roi_head.bbox_head.fc_cls.weight']['lr'] == pytest.approx(lr)
    assert groups['backbone.layers.11.attn.qkv.weight']['lr'] == pytest.approx(lr * 0.7)
    assert groups['backbone.layers.0.attn.qkv.weight']['lr'] == pytest.approx(lr * 0.7**12)
    assert groups['backbone.patch_embed.projection.weight']['lr'] == pytest.approx(lr * 0.7**13)
    assert groups['backbone.layers.0.attn.qkv.weight']['weight_decay'] == 0.1
    for no_decay in ('backbone.pos_embed', 'backbone.layers.0.ln1.weight', 'backbone.layers.0.attn.qkv.bias',
                     'neck.lateral_convs.0.ln.weight'):
        assert groups[no_decay]['weight_decay'] == 0, no_decay


def test_windowed_blocks_attend_within_windows_and_global_blocks_over_the_grid():
    torch.manual_seed(0)
    vit = PlainViT(arch=TINY_ARCH, img_size=128, window_size=6, global_indices=(3, ), out_indices=(3, ),
                   drop_path_rate=0., rpe=dict(ratio=1.9, index_mode='integer')).eval()
    for layer in vit.layers:
        torch.nn.init.normal_(layer.attn.rpe.lookup_table)
    x = torch.randn(1, 8, 8, TINY_ARCH['embed_dims'])  # an 8x8 grid: windows of 6x6, padded to 12x12
    layer = vit.layers[0]
    with torch.no_grad():
        out = vit._windowed_block(layer, x)
        corner = layer(x[:, :6, :6].reshape(1, 36, -1), AttentionContext((6, 6))).view(1, 6, 6, -1)
        whole = layer(x.reshape(1, 64, -1), AttentionContext((8, 8))).view(1, 8, 8, -1)
    torch.testing.assert_close(out[:, :6, :6], corner)  # the top-left window sees only itself
    assert (out[:, :6, :6] - whole[:, :6, :6]).abs().max() > 1e-3  # ... which is not global attention


@pytest.mark.parametrize('pe', ['ape', 'rpe'])
def test_tiny_mask_rcnn_loads_the_adpe_encoder_trains_and_reports_coco_ap(pe, ckpts, coco, tmp_path):
    ckpt = ckpts[pe]
    config = write(str(tmp_path / f'tiny_det_{pe}.py'), TINY.format(
        config=RPE_CONFIG if pe == 'rpe' else APE_CONFIG, classes=coco['classes'], arch=TINY_ARCH, ckpt=ckpt,
        dims=TINY_ARCH['embed_dims'], root=coco['root'], ann_file=coco['ann_file']))

    import adpe_mm.det  # noqa: F401
    model = build(Config.fromfile(config).model)
    report = load_pretrained_encoder(model.backbone, ckpt)
    state = torch.load(ckpt, map_location='cpu', weights_only=True)['state_dict']
    expected = {k for k in state if not k.startswith('backbone.') or 'adv_' in k or k.endswith('mask_token')}
    # no cls token and no final LN in a ViTDet backbone
    expected |= {'backbone.cls_token', 'backbone.ln1.weight', 'backbone.ln1.bias'}
    assert report.missing == [] and set(report.dropped) == expected
    assert report.resized == {'pos_embed': ((1, 50, 128), (1, 256, 128))}

    train = run_tool([PYTHON, TRAIN, config, '--work-dir', str(tmp_path / 'train')], cwd=str(tmp_path))
    assert f'{len(report.loaded)} loaded, {len(report.dropped)} dropped, 0 missing' in train.stdout
    test = run_tool([PYTHON, TEST, config, last_checkpoint(str(tmp_path / 'train')), '--work-dir',
                     str(tmp_path / 'test')], cwd=str(tmp_path))
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert 0 <= metric_value(test.stdout, key) <= 1
