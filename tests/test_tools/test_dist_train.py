"""tools/dist_train.sh with two CPU processes (gloo): the smoke config writes a checkpoint, and every tiny
pretraining config (MAE, MAE+ with APE and iRPE, each AdPE mode, FGSM) starts, trains and ends with the same
weights and adversaries on both ranks."""
import glob
import os.path as osp

import pytest
import torch

import adpe_mm  # noqa: F401  (torch.load of runner checkpoints)
from adpe_mm.models.pos_embed import decode_lookup
from conftest import REPO_ROOT, SMOKE_CONFIG, run_tool, tool_env
from dist_helpers import differing_entries, dist_train, free_port, run_log, with_rank_states

MAIN_JOB = osp.join(REPO_ROOT, 'configs', 'mae_plus', 'maeplus_vit-tiny-p16_4x112-1xb8-300iter_embedded.py')
# Every CPU-sized pretraining config on the embedded photos (not the _base_ files, and not the epoch-based
# downstream ones, which tests/test_transfer/test_transfer_dist.py runs), and MAE+ with iRPE, which has no
# file of its own at tiny size.
DOWNSTREAM = ('finetune', 'linear_probe')
TINY = sorted(p for p in glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*_embedded*.py'), recursive=True)
              if f'{osp.sep}_base_{osp.sep}' not in p
              and osp.basename(osp.dirname(p)) not in DOWNSTREAM)
RUNS = [(p, None) for p in TINY] + [(MAIN_JOB, 'irpe')]
IRPE = {'model.backbone.rpe': dict(ratio=1.9), 'model.neck.rpe': dict(ratio=1.9)}
ITERS = 4


@pytest.fixture(scope='module')
def dist_run(tmp_path_factory, embedded_data):
    tmp = tmp_path_factory.mktemp('dist')
    work_dir = tmp / 'work'
    proc = run_tool(
        ['bash', osp.join(REPO_ROOT, 'tools', 'dist_train.sh'), SMOKE_CONFIG, '2', '--work-dir', str(work_dir),
         '--cfg-options', f'train_dataloader.dataset.data_root={embedded_data}', 'train_cfg.max_iters=4',
         'default_hooks.checkpoint.interval=4', 'default_hooks.logger.interval=2'],
        cwd=str(tmp), env=tool_env(PORT=str(free_port())))
    log_files = glob.glob(str(work_dir / '*' / '*.log'))
    return dict(work_dir=work_dir, stdout=proc.stdout, log=open(log_files[0]).read() if log_files else '')


def test_two_ranks_train_with_gloo(dist_run):
    assert "'backend': 'gloo'" in dist_run['log'] or "backend='gloo'" in dist_run['log']
    assert 'Distributed training: True' in dist_run['log']
    assert 'GPU number: 2' in dist_run['log']  # mmengine's name for the world size


def test_rank_zero_writes_the_checkpoint(dist_run):
    ckpt = torch.load(dist_run['work_dir'] / 'iter_4.pth')
    assert ckpt['meta']['iter'] == 4
    # mmengine saves the unwrapped model: no DDP 'module.' prefix.
    assert not any(k.startswith('module.') for k in ckpt['state_dict'])


@pytest.mark.parametrize('config,variant', RUNS,
                         ids=[osp.basename(p) + (f'+{v}' if v else '') for p, v in RUNS])
def test_every_tiny_config_trains_on_two_ranks_and_they_end_identical(config, variant, embedded_data, tmp_path):
    changes = dict(IRPE if variant == 'irpe' else {})
    # A constant lr (no warm-up) so that every iRPE table moves within the few iterations.
    changes.update({'train_cfg.max_iters': ITERS, 'param_scheduler': [], 'default_hooks.logger.interval': 1,
                    'default_hooks.checkpoint.interval': ITERS, 'train_dataloader.num_workers': 0,
                    'train_dataloader.persistent_workers': False,
                    'train_dataloader.dataset.data_root': embedded_data})
    cfg = with_rank_states(config, str(tmp_path / 'config.py'), changes)
    work_dir = str(tmp_path / 'work')
    _, states = dist_train(cfg, work_dir)
    assert 'GPU number: 2' in run_log(work_dir)

    assert differing_entries(states) == []
    saved = torch.load(osp.join(work_dir, f'iter_{ITERS}.pth'), weights_only=True)['state_dict']
    assert differing_entries([saved, states[1]]) == []
    adversaries = {k: v for k, v in states[0].items() if '.adv_' in k}
    assert ('adpe-' in osp.basename(config)) == bool(adversaries)
    # the tiny AdPE configs use fresh adversaries: stand-ins of an attack, whose parameters stay at zero (the
    # attack changes the weights' step instead, which the identical-ranks check above covers)
    assert all(v.abs().sum() == 0 for v in adversaries.values()), adversaries
    lookups = [decode_lookup(v) for k, v in states[0].items() if k.endswith('rpe._extra_state')]
    assert bool(lookups) == ('rpe' in osp.basename(config) or variant == 'irpe')
