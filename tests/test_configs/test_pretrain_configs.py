"""Every pretraining config parses, builds its model and optimizer wrapper; representative ViT-B ones run."""
import glob
import logging
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS, TRANSFORMS

import adpe_mm  # noqa: F401
from conftest import REPO_ROOT

MMLogger.get_instance('mmengine').setLevel(logging.WARNING)
CONFIGS = sorted(
    p for folder in ('mae', 'mae_plus', 'adpe') for p in glob.glob(osp.join(REPO_ROOT, 'configs', folder, '**', '*.py'),
                                                                    recursive=True) if '/_base_/' not in p)
RUN_ONE_FORWARD = [
    'mae/mae_vit-base-p16_8xb128-accum4-amp-coslr-400e_in1k.py',
    'mae_plus/maeplus_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py',
    'mae_plus/maeplus-rpe_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py',
    'adpe/vitb_rpe_coord_1600e.py',
    'adpe/table_a2/adpe-ape-coord-l2-eps3_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py',
    'adpe/table_a2/adpe-rpe-embed-linf-eps15_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py',
]


def rel(path):
    return osp.relpath(path, osp.join(REPO_ROOT, 'configs'))


def test_the_grid_and_the_required_configs_exist():
    names = {rel(p) for p in CONFIGS}
    assert 'adpe/vitb_rpe_coord_1600e.py' in names and 'adpe/vitl_rpe_coord_1600e.py' in names
    assert len([n for n in names if n.startswith('adpe/table_a2/')]) == 24
    assert len([n for n in names if n.startswith('mae_plus/maeplus_vit-')]) == 13  # B/L x k 1,2,4 x 2 + tiny


@pytest.mark.parametrize('path', CONFIGS, ids=rel)
def test_config_builds_model_pipeline_and_optimizer(path):
    cfg = Config.fromfile(path)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        for t in cfg.train_dataloader.dataset.pipeline:
            TRANSFORMS.build(t)
        if 'large' in path or 'vitl' in path:
            return  # ViT-L: config and pipeline only (building 300M parameters is slow)
        model = MODELS.build(cfg.model)
        wrapper_cfg = cfg.optim_wrapper.copy()
        # AMP wrappers need a GPU in mmengine; the plain version checks the same parameter groups.
        wrapper_cfg['type'] = wrapper_cfg['type'].replace('AmpAdv', 'Adv').replace('AmpOptim', 'Optim')
        for key in ('loss_scale', 'dtype'):
            wrapper_cfg.pop(key, None)
        wrapper = build_optim_wrapper(model, wrapper_cfg)
    has_adv = any(n.rsplit('.', 1)[-1].startswith('adv_') for n, _ in model.named_parameters())
    assert has_adv == ('adversary' in cfg.model)
    if has_adv:
        adv_groups = [g for g in wrapper.param_groups if g.get('maximize')]
        assert adv_groups and all(g['weight_decay'] == 0 for g in adv_groups)


@pytest.mark.parametrize('name', RUN_ONE_FORWARD)
def test_full_size_vit_b_config_runs_one_training_forward(name):
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', name))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    size = 224 if name.startswith('mae/') else 112
    views = 1 if name.startswith('mae/') else 4
    inputs = [torch.randint(0, 255, (1, 3, size, size), dtype=torch.uint8) for _ in range(views)]
    data = model.data_preprocessor(dict(inputs=inputs if views > 1 else inputs[0], data_samples=None), True)
    loss = model(**data, mode='loss')['loss']
    assert torch.isfinite(loss) and 0.5 < loss.item() < 2.0  # normalised-pixel MSE of an untrained model
