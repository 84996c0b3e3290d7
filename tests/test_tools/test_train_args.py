"""tools/train.py and tools/test.py: what the command line does to the config, and that the config's
default_scope picks the library (mmpretrain, mmdet, mmseg) that builds the model."""
import importlib.util
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from conftest import REPO_ROOT, SMOKE_CONFIG, tool_env


def load_tool(name):
    spec = importlib.util.spec_from_file_location(f'tool_{name}', osp.join(REPO_ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def train_tool():
    return load_tool('train')


def merged(train_tool, *argv, cfg=None):
    args = train_tool.parse_args([SMOKE_CONFIG, *argv])
    return train_tool.merge_args(cfg if cfg is not None else Config.fromfile(SMOKE_CONFIG), args)


@pytest.mark.parametrize('before,after', [('OptimWrapper', 'AmpOptimWrapper'),
                                          ('AdvOptimWrapper', 'AmpAdvOptimWrapper'),
                                          ('mmpretrain.AdvOptimWrapper', 'mmpretrain.AmpAdvOptimWrapper')])
def test_amp_switches_to_the_mixed_precision_wrapper(train_tool, before, after):
    cfg = Config.fromfile(SMOKE_CONFIG)
    cfg.optim_wrapper.type = before
    train_tool.switch_to_amp(cfg.optim_wrapper, gpu=True)
    assert cfg.optim_wrapper.type == after and 'dtype' not in cfg.optim_wrapper


def test_amp_without_a_gpu_runs_the_adversarial_wrapper_in_bfloat16(train_tool):
    cfg = Config.fromfile(SMOKE_CONFIG)
    cfg.optim_wrapper.type = 'AdvOptimWrapper'
    train_tool.switch_to_amp(cfg.optim_wrapper, gpu=False)
    assert cfg.optim_wrapper.type == 'AmpAdvOptimWrapper' and cfg.optim_wrapper.dtype == 'bfloat16'


def test_amp_without_a_gpu_refuses_a_plain_wrapper_saying_what_to_do(train_tool):
    cfg = Config.fromfile(SMOKE_CONFIG)
    with pytest.raises(ValueError, match='AmpOptimWrapper .* needs a GPU.*without --amp'):
        train_tool.switch_to_amp(cfg.optim_wrapper, gpu=False)


def test_auto_scale_lr_counts_gradient_accumulation(train_tool):
    config = osp.join(REPO_ROOT, 'configs', 'mae_plus', 'maeplus_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py')
    args = train_tool.parse_args([config, '--auto-scale-lr'])
    cfg = train_tool.merge_args(Config.fromfile(config), args)
    # mmengine scales by world x 128 / base; with base 4096 / 4 = 1024, 8 GPUs x 128 keep the lr as written
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=1024)
    assert Config.fromfile(config).auto_scale_lr.enable is False  # off unless asked for


def test_auto_scale_lr_needs_a_base_batch_size(train_tool):
    with pytest.raises(ValueError, match='auto_scale_lr'):
        merged(train_tool, '--auto-scale-lr')


def test_no_validate_and_tensorboard(train_tool):
    cfg = merged(train_tool, '--no-validate', '--tensorboard')
    assert cfg.val_cfg is None and cfg.val_dataloader is None and cfg.val_evaluator is None
    assert [b['type'] for b in cfg.visualizer.vis_backends][-1] == 'TensorboardVisBackend'


def test_amp_rejects_an_unknown_wrapper(train_tool):
    cfg = Config.fromfile(SMOKE_CONFIG)
    cfg.optim_wrapper.type = 'SomeOtherWrapper'
    with pytest.raises(ValueError, match='SomeOtherWrapper'):
        merged(train_tool, '--amp', cfg=cfg)


def test_resume_without_path_resumes_from_the_work_dir(train_tool):
    cfg = merged(train_tool, '--resume')
    assert cfg.resume is True and cfg.load_from is None


def test_resume_with_path_resumes_from_that_checkpoint(train_tool):
    cfg = merged(train_tool, '--resume', 'w/iter_10.pth')
    assert cfg.resume is True and cfg.load_from == 'w/iter_10.pth'


def test_config_without_default_scope_uses_mmpretrain(train_tool):
    cfg = Config.fromfile(SMOKE_CONFIG)
    cfg.pop('default_scope')
    assert merged(train_tool, cfg=cfg).default_scope == 'mmpretrain'


def test_work_dir_defaults_to_work_dirs_config_name(train_tool):
    cfg = Config.fromfile(SMOKE_CONFIG)
    assert merged(train_tool, cfg=cfg).work_dir == osp.join('./work_dirs', osp.basename(SMOKE_CONFIG)[:-3])


def test_cfg_options_override_the_config(train_tool):
    cfg = merged(train_tool, '--cfg-options', 'train_dataloader.dataset.data_root=/data/imagenet')
    assert cfg.train_dataloader.dataset.data_root == '/data/imagenet'


# Builds the Runner (model included, no training) the way tools/train.py does, in a fresh process because
# a Runner switches the process-wide default registry scope.
BUILD_RUNNER = """
import sys
sys.path.insert(0, {tools!r})
from mmengine.config import Config
import train
args = train.parse_args([{config!r}, '--work-dir', {work_dir!r}])
cfg = train.merge_args(Config.fromfile(args.config), args)
runner = train.Runner.from_cfg(cfg)
print('SCOPE', cfg.default_scope, 'MODEL', type(runner.model).__name__)
"""


@pytest.mark.parametrize('config,scope,model', [
    (SMOKE_CONFIG, 'mmpretrain', 'MAE'),
    ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', 'mmdet', 'MaskRCNN'),
    ('mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py', 'mmseg', 'EncoderDecoder'),
], ids=['mmpretrain', 'mmdet', 'mmseg'])
def test_default_scope_selects_the_library(tmp_path, config, scope, model):
    if '::' in config:  # a library's own config, through a child config as users write them
        child = tmp_path / 'child.py'
        child.write_text(f'_base_ = [{config!r}]\n')
        config = str(child)
    code = BUILD_RUNNER.format(tools=osp.join(REPO_ROOT, 'tools'), config=config, work_dir=str(tmp_path / 'w'))
    proc = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path), env=tool_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f'SCOPE {scope} MODEL {model}' in proc.stdout
