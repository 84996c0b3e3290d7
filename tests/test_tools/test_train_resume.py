"""tools/train.py on the smoke MAE config: train 10 iterations, then --resume continues to 20 exactly."""
import glob
import os.path as osp
import sys

import pytest
import torch

import adpe_mm  # noqa: F401  (torch.load of runner checkpoints)
from conftest import REPO_ROOT, SMOKE_CONFIG, run_tool, tool_env

PROBE_DIR = osp.dirname(osp.abspath(__file__))


@pytest.fixture(scope='module')
def resumed_runs(tmp_path_factory, embedded_data):
    """Run 1: iterations 1-10 (checkpoints at 5, 10). Run 2: --resume, iterations 11-20."""
    tmp = tmp_path_factory.mktemp('resume')
    work_dir = tmp / 'work'
    probe = tmp / 'probe.pth'
    # A child config adds the probe hook; --cfg-options cannot express a list of dicts.
    config = tmp / 'smoke_with_probe.py'
    config.write_text(f'_base_ = [{SMOKE_CONFIG!r}]\n'
                      "custom_imports = dict(imports=['adpe_mm', 'resume_probe'], allow_failed_imports=False)\n"
                      f"custom_hooks = [dict(type='ResumeProbeHook', out_file={str(probe)!r})]\n")
    common = [sys.executable, osp.join(REPO_ROOT, 'tools', 'train.py'), str(config), '--work-dir', str(work_dir)]
    options = ['--cfg-options', f'train_dataloader.dataset.data_root={embedded_data}',
               'default_hooks.checkpoint.interval=5']
    env = tool_env(PYTHONPATH=f'{REPO_ROOT}:{PROBE_DIR}')
    run_tool(common + options + ['train_cfg.max_iters=10'], cwd=str(tmp), env=env)
    first_probe = torch.load(probe)
    second = run_tool(common + ['--resume'] + options + ['train_cfg.max_iters=20'], cwd=str(tmp), env=env)
    return dict(work_dir=work_dir, first_probe=first_probe, probe=torch.load(probe), log=second.stdout)


def test_first_run_starts_from_scratch(resumed_runs):
    assert resumed_runs['first_probe']['iter'] == 0
    assert resumed_runs['first_probe']['optimizer']['state'] == {}


def test_resumed_run_starts_at_iteration_10(resumed_runs):
    assert resumed_runs['probe']['iter'] == 10
    assert 'resumed epoch: 0, iter: 10' in resumed_runs['log']
    assert osp.basename(str(resumed_runs['work_dir'] / 'iter_10.pth')) in resumed_runs['log']


def test_resumed_optimizer_state_equals_saved_state(resumed_runs):
    saved = torch.load(resumed_runs['work_dir'] / 'iter_10.pth')['optimizer']
    loaded = resumed_runs['probe']['optimizer']
    assert saved['state'].keys() == loaded['state'].keys() and len(saved['state']) > 0
    for key, state in saved['state'].items():
        assert torch.equal(state['exp_avg'], loaded['state'][key]['exp_avg'])
        assert torch.equal(state['exp_avg_sq'], loaded['state'][key]['exp_avg_sq'])
        assert torch.equal(torch.as_tensor(state['step']), torch.as_tensor(loaded['state'][key]['step']))
    assert [g['lr'] for g in saved['param_groups']] == [g['lr'] for g in loaded['param_groups']]


def test_resumed_run_writes_checkpoints_15_and_20_only(resumed_runs):
    names = sorted(osp.basename(p) for p in glob.glob(str(resumed_runs['work_dir'] / 'iter_*.pth')))
    assert names == ['iter_10.pth', 'iter_15.pth', 'iter_20.pth', 'iter_5.pth']


def test_final_checkpoint_continues_the_message_hub(resumed_runs):
    ckpt = torch.load(resumed_runs['work_dir'] / 'iter_20.pth')
    assert ckpt['meta']['iter'] == 20
    hub = ckpt['message_hub']
    assert hub['runtime_info']['iter'] == 19  # the index of the last iteration run
    # One loss per iteration: 10 restored from run 1, 10 from run 2.
    losses = hub['log_scalars']['train/loss'].data[0]
    assert len(losses) == 20
    saved = torch.load(resumed_runs['work_dir'] / 'iter_10.pth')['message_hub']['log_scalars']['train/loss']
    assert (losses[:10] == saved.data[0]).all()
