"""AtomicCheckpointHook: a SIGKILL in the middle of a checkpoint write, with max_keep_ckpts=1, loses nothing:
the previous checkpoint and ``last_checkpoint`` stay good, no partial file carries a checkpoint's name, and
--resume continues from the previous checkpoint to the end."""
import glob
import os.path as osp
import signal
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

import adpe_mm  # noqa: F401  (torch.load of runner checkpoints)
from conftest import REPO_ROOT, SMOKE_CONFIG, run_tool, tool_env

TESTS_DIR = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = osp.join(REPO_ROOT, 'tools', 'train.py')


def test_every_shipped_config_uses_the_atomic_hook():
    for path in glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True):
        if f'{osp.sep}_base_{osp.sep}' in path and 'runtime' not in path:
            continue
        hooks = Config.fromfile(path).get('default_hooks') or {}
        if 'checkpoint' in hooks:
            assert hooks['checkpoint']['type'] == 'AtomicCheckpointHook', path


@pytest.fixture(scope='module')
def killed_run(tmp_path_factory, embedded_data):
    """Iterations 1-4 with a checkpoint every 2 and max_keep_ckpts=1, killed while iter_4.pth is written."""
    tmp = tmp_path_factory.mktemp('kill')
    work_dir = tmp / 'work'
    config = tmp / 'smoke_killed.py'
    config.write_text(f'_base_ = [{SMOKE_CONFIG!r}]\n'
                      "custom_imports = dict(imports=['adpe_mm', 'probe_hooks'], allow_failed_imports=False)\n"
                      "custom_hooks = [dict(type='KillDuringCheckpointWrite', at_iter=4)]\n")
    options = ['--cfg-options', f'train_dataloader.dataset.data_root={embedded_data}', 'train_cfg.max_iters=4',
               'default_hooks.checkpoint.interval=2', 'default_hooks.checkpoint.max_keep_ckpts=1']
    env = tool_env(PYTHONPATH=f'{REPO_ROOT}:{TESTS_DIR}')
    proc = subprocess.run([sys.executable, TRAIN, str(config), '--work-dir', str(work_dir)] + options, cwd=str(tmp),
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    files = sorted(osp.basename(p) for p in glob.glob(str(work_dir / 'iter_*')))
    last = (work_dir / 'last_checkpoint').read_text()
    return dict(tmp=tmp, work_dir=work_dir, proc=proc, files=files, last=last, options=options)


def test_the_kill_came_during_the_write(killed_run):
    assert killed_run['proc'].returncode == -signal.SIGKILL, killed_run['proc'].stdout[-3000:]
    assert 'iter_4.pth.tmp' in killed_run['files']  # half of it was written


def test_the_previous_checkpoint_and_last_checkpoint_survive(killed_run):
    assert 'iter_4.pth' not in killed_run['files'] and 'iter_2.pth' in killed_run['files']
    assert osp.basename(killed_run['last']) == 'iter_2.pth'
    assert torch.load(killed_run['last'], weights_only=True)['meta']['iter'] == 2


def test_resume_continues_from_the_previous_checkpoint_and_cleans_up(killed_run):
    work_dir = killed_run['work_dir']
    proc = run_tool([sys.executable, TRAIN, SMOKE_CONFIG, '--work-dir', str(work_dir), '--resume']
                    + killed_run['options'], cwd=str(killed_run['tmp']))
    assert 'resumed epoch: 0, iter: 2' in proc.stdout
    assert sorted(osp.basename(p) for p in glob.glob(str(work_dir / 'iter_*'))) == ['iter_4.pth']
    assert torch.load(work_dir / 'iter_4.pth', weights_only=True)['meta']['iter'] == 4
    assert osp.basename((work_dir / 'last_checkpoint').read_text()) == 'iter_4.pth'
