"""ImageNet fine-tuning and linear-probing configs: they build through mmpretrain's registries at full size,
and at tiny width they train and evaluate a tiny AdPE checkpoint through tools/train.py and tools/test.py."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import adpe_mm  # noqa: F401
from adpe_mm.models.pos_embed import decode_lookup
from adpe_mm.models.backbones.pretrained import load_pretrained_encoder
from conftest import REPO_ROOT, run_tool
from transfer_helpers import PYTHON, TEST, TRAIN, last_checkpoint, metric_value, tiny_classifier_config
from transfer_helpers import ckpts  # noqa: F401  (session fixture: the tiny pretraining checkpoints)

CONFIGS = sorted(p for p in glob.glob(osp.join(REPO_ROOT, 'configs', 'finetune', '*.py')) +
                 glob.glob(osp.join(REPO_ROOT, 'configs', 'linear_probe', '*.py')) if not p.endswith('_embedded.py'))

# The embedded children of the ImageNet configs (their recipes at the tiny width on data/embedded).
RUNS = [
    ('finetune/vit-tiny-p16_1xb8-coslr-10e_embedded.py', 'ape'),
    ('finetune/vit-tiny-p16-rpe_1xb8-coslr-10e_embedded.py', 'rpe'),
    ('linear_probe/vit-tiny-p16_1xb8-linear-coslr-10e_embedded.py', 'ape'),
    ('linear_probe/vit-tiny-p16-rpe_1xb8-linear-coslr-10e_embedded.py', 'rpe'),
]


@pytest.mark.parametrize('config', CONFIGS, ids=osp.basename)
def test_config_builds_model_and_layer_decay_optimizer_through_stock_registries(config):
    from mmpretrain.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(config)
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'ImageClassifier' and type(model.backbone).__name__ == 'IRPEViT'
    assert model.backbone.num_layers == 12 and model.backbone.embed_dims == 768
    assert (model.backbone.rpe_cfg is not None) == ('-rpe' in osp.basename(config))
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = {g['param_name']: g for g in wrapper.optimizer.param_groups} if 'finetune' in config else None
    if groups is not None:  # appendix A: lr 4e-3 x 0.75^(13 - depth), no decay on norms/biases/tokens/tables
        assert groups['head.fc.weight']['lr'] == pytest.approx(4e-3)
        assert groups['backbone.layers.11.attn.qkv.weight']['lr'] == pytest.approx(4e-3 * 0.75)
        assert groups['backbone.patch_embed.projection.weight']['lr'] == pytest.approx(4e-3 * 0.75**13)
        assert groups['backbone.pos_embed']['weight_decay'] == 0
        assert groups['backbone.layers.0.attn.qkv.weight']['weight_decay'] == 0.05
        if model.backbone.rpe_cfg:
            assert groups['backbone.layers.0.attn.rpe.lookup_table']['weight_decay'] == 0
    else:  # linear probe: LARS on a frozen encoder
        assert type(wrapper.optimizer).__name__ == 'LARS'
        assert not any(p.requires_grad for p in model.backbone.parameters())


@pytest.mark.parametrize('config,pe', RUNS, ids=[osp.basename(c) for c, _ in RUNS])
def test_tiny_run_loads_the_adpe_encoder_trains_and_reports_accuracy(config, pe, ckpts, embedded_data, tmp_path):
    ckpt = ckpts[pe]
    tiny = tiny_classifier_config(str(tmp_path), config, ckpt, embedded_data)

    # the backbone of this very config takes the encoder with nothing missing
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    model = MODELS.build(Config.fromfile(tiny).model)
    report = load_pretrained_encoder(model.backbone, ckpt)
    state = torch.load(ckpt, map_location='cpu', weights_only=True)['state_dict']
    expected = {k for k in state if not k.startswith('backbone.') or 'adv_' in k or k.endswith('mask_token')}
    if 'finetune' in config:  # global pooling: the final LN of pretraining gives way to a new one
        expected |= {'backbone.ln1.weight', 'backbone.ln1.bias'}
    assert report.missing == [] and set(report.dropped) == expected

    train = run_tool([PYTHON, TRAIN, tiny, '--work-dir', str(tmp_path / 'train')], cwd=str(tmp_path))
    assert 'load backbone. in model from' in train.stdout or 'load_pretrained_encoder' in train.stdout
    trained = last_checkpoint(str(tmp_path / 'train'))
    test = run_tool([PYTHON, TEST, tiny, trained, '--work-dir', str(tmp_path / 'test')], cwd=str(tmp_path))
    assert 0 <= metric_value(test.stdout, 'accuracy/top1') <= 100

    after = torch.load(trained, map_location='cpu', weights_only=True)['state_dict']
    qkv = 'backbone.layers.0.attn.qkv.weight'
    if 'linear_probe' in config:  # the encoder is frozen: only the BN neck and the head learn
        assert torch.equal(after[qkv], state[qkv])
        assert torch.equal(after['backbone.ln1.weight'], state['backbone.ln1.weight'])
    else:
        assert not torch.equal(after[qkv], state[qkv])
    if pe == 'rpe':
        assert decode_lookup(after['backbone.layers.0.attn.rpe._extra_state'])['index_mode'] == 'relaxed'
