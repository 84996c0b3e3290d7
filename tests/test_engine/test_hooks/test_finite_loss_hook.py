"""FiniteLossHook: a diverging run (weights lr 1e3) stops with a non-zero exit and an error that names the
iteration and the loss terms, and the last checkpoint on disk is the last good one; the message names the
adversaries' sizes; 'skip' goes on only while the weights are finite."""
import glob
import math
import os.path as osp
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from torch import nn

import adpe_mm  # noqa: F401  (torch.load of runner checkpoints)
from adpe_mm.engine.hooks import FiniteLossHook, NonFiniteTrainingError
from adpe_mm.adversary import adversary_parameter
from conftest import REPO_ROOT, SMOKE_CONFIG, tool_env

TRAIN = osp.join(REPO_ROOT, 'tools', 'train.py')


def test_the_shared_runtime_turns_it_on():
    for runtime in ('default_runtime.py', 'det_default_runtime.py', 'seg_default_runtime.py'):
        hooks = Config.fromfile(osp.join(REPO_ROOT, 'configs', '_base_', runtime)).default_hooks
        assert hooks['finite_loss']['type'] == 'FiniteLossHook', runtime


@pytest.fixture(scope='module')
def diverged(tmp_path_factory, embedded_data):
    """The smoke config at weights lr 1e3 (loss 1.1, then ~1e10, then NaN), a checkpoint every iteration."""
    tmp = tmp_path_factory.mktemp('diverge')
    work_dir = tmp / 'work'
    options = ['--cfg-options', f'train_dataloader.dataset.data_root={embedded_data}', 'train_cfg.max_iters=8',
               'optim_wrapper.optimizer.lr=1000.0', 'param_scheduler=[]', 'default_hooks.checkpoint.interval=1',
               'default_hooks.logger.interval=1', 'train_dataloader.num_workers=0',
               'train_dataloader.persistent_workers=False']
    proc = subprocess.run([sys.executable, TRAIN, SMOKE_CONFIG, '--work-dir', str(work_dir)] + options,
                          cwd=str(tmp), env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600)
    return dict(proc=proc, work_dir=work_dir)


def test_a_diverging_run_stops_with_an_error_that_names_iteration_and_losses(diverged):
    proc = diverged['proc']
    assert proc.returncode != 0, proc.stdout[-3000:]
    match = re.search(r'FiniteLossHook: non-finite (loss|weights).*?iteration (\d+) of 8', proc.stdout)
    assert match, proc.stdout[-3000:]
    assert 'loss=' in proc.stdout[match.start():]
    assert 'NonFiniteTrainingError' in proc.stdout
    assert int(match.group(2)) < 8  # it stopped before the end


def test_the_last_checkpoint_is_the_last_good_one(diverged):
    out = diverged['proc'].stdout
    stopped_at = int(re.search(r'iteration (\d+) of 8', out).group(1))
    names = sorted(osp.basename(p) for p in glob.glob(str(diverged['work_dir'] / 'iter_*')))
    assert f'iter_{stopped_at}.pth' not in names  # the bad step was never saved
    last = (diverged['work_dir'] / 'last_checkpoint').read_text().strip()
    assert osp.basename(last) == f'iter_{stopped_at - 1}.pth'
    state = torch.load(last, weights_only=True)['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


class _Toy(nn.Module):

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3))
        self.adv_delta = adversary_parameter(2, 'l2', 1.0)


def _runner(model, it=4, last_ckpt=None, name='finite_loss_test'):
    hub = MessageHub.get_instance(name)
    if last_ckpt:
        hub.update_info('last_ckpt', last_ckpt)
    return SimpleNamespace(model=model, iter=it, max_iters=10, message_hub=hub)


def test_the_message_names_iteration_terms_adversary_norms_and_the_last_checkpoint():
    model = _Toy()
    with torch.no_grad():
        model.adv_delta.copy_(torch.tensor([0.3, 0.4]))  # l2 norm 0.5, computed here
    runner = _runner(model, it=4, last_ckpt='work/iter_4.pth', name='finite_loss_msg')
    outputs = dict(loss=torch.tensor(float('nan')), loss_rec=torch.tensor(0.25), acc=torch.tensor(1.0))
    with pytest.raises(NonFiniteTrainingError) as err:
        FiniteLossHook().after_train_iter(runner, 0, outputs=outputs)
    message = str(err.value)
    assert 'non-finite loss at iteration 5 of 10' in message
    assert 'loss=nan' in message and 'loss_rec=0.25' in message and 'acc' not in message
    assert 'adv_delta=0.5 (l2 ball, eps 1)' in message
    assert 'work/iter_4.pth' in message


def test_finite_losses_and_weights_pass():
    FiniteLossHook().after_train_iter(_runner(_Toy(), name='finite_loss_ok'), 0,
                                      outputs=dict(loss=torch.tensor(0.7)))


def test_finite_loss_with_nan_weights_stops_and_names_the_parameter():
    model = _Toy()
    with torch.no_grad():
        model.weight[1] = math.inf
    with pytest.raises(NonFiniteTrainingError, match=r'non-finite weights.*non-finite parameters: 1 \(weight\)'):
        FiniteLossHook().after_train_iter(_runner(model, name='finite_loss_w'), 0,
                                          outputs=dict(loss=torch.tensor(0.7)))


def test_skip_goes_on_while_the_weights_are_finite_and_stops_when_they_are_not():
    hook = FiniteLossHook(action='skip')
    nan = dict(loss=torch.tensor(float('nan')))
    hook.after_train_iter(_runner(_Toy(), name='finite_loss_skip'), 0, outputs=nan)  # an AMP-skipped step
    model = _Toy()
    with torch.no_grad():
        model.weight[0] = float('nan')
    with pytest.raises(NonFiniteTrainingError, match='weight'):
        hook.after_train_iter(_runner(model, name='finite_loss_skip2'), 0, outputs=nan)


def test_a_bad_action_is_refused_by_name():
    with pytest.raises(ValueError, match="'ignore'"):
        FiniteLossHook(action='ignore')
