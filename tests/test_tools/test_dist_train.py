"""tools/dist_train.sh: two CPU processes (gloo) train the smoke config and write a checkpoint."""
import glob
import os.path as osp
import socket

import pytest
import torch

import adpe_mm  # noqa: F401  (torch.load of runner checkpoints)
from conftest import REPO_ROOT, SMOKE_CONFIG, run_tool, tool_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


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
