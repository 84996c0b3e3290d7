"""adpe_mm's torch.load allow-list: real mmengine runner checkpoints load with weights_only, nothing else."""
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint
from torch import nn
from torch.utils.data import Dataset

import adpe_mm  # noqa: F401  registers the allow-list
from adpe_mm.utils import mmengine_safe_globals, register_mmengine_safe_globals


class _TinyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs) if isinstance(inputs, list) else inputs)
        return dict(loss=out.pow(2).mean()) if mode == 'loss' else out


class _RandomPoints(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(inputs=torch.full((2, ), float(i)))


def _train_and_checkpoint(work_dir: str, loop: str) -> str:
    """Train a tiny model for 4 iterations (or 2 epochs of 2) with AdamW + a scheduler; the last checkpoint."""
    by_epoch = loop == 'epoch'
    runner = Runner(
        model=_TinyModel(),
        work_dir=work_dir,
        experiment_name=f'ckpt_{loop}',
        train_dataloader=dict(dataset=_RandomPoints(), batch_size=4, sampler=dict(type='DefaultSampler'),
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=2) if by_epoch else dict(by_epoch=False, max_iters=4),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        param_scheduler=dict(type='LinearLR', start_factor=0.1, by_epoch=by_epoch, begin=0, end=2),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=by_epoch),
                           logger=dict(type='LoggerHook', interval=1)),
        log_processor=dict(by_epoch=by_epoch),
        randomness=dict(seed=0),
        default_scope='mmengine')
    runner.train()
    return osp.join(work_dir, 'epoch_2.pth' if by_epoch else 'iter_4.pth')


@pytest.fixture(scope='module', params=['iter', 'epoch'])
def runner_checkpoint(request, tmp_path_factory) -> str:
    return _train_and_checkpoint(str(tmp_path_factory.mktemp(f'ckpt_{request.param}')), request.param)


def test_runner_checkpoint_loads_with_default_weights_only(runner_checkpoint):
    ckpt = torch.load(runner_checkpoint)  # torch >= 2.6 default: weights_only=True
    assert isinstance(ckpt['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    assert ckpt['meta']['iter'] == 4


def test_loaded_message_hub_restores_history_and_statistics(runner_checkpoint):
    ckpt = torch.load(runner_checkpoint, weights_only=True)
    hub = MessageHub.get_instance(f'restored_{osp.basename(runner_checkpoint)}')
    hub.load_state_dict(ckpt['message_hub'])
    loss = hub.get_scalar('train/loss')
    assert len(loss.data[0]) == 4
    assert loss.mean() == pytest.approx(float(np.mean(loss.data[0])))


def test_mmengine_load_checkpoint_accepts_runner_checkpoint(runner_checkpoint):
    model = _TinyModel()
    ckpt = load_checkpoint(model, runner_checkpoint, map_location='cpu')
    assert torch.equal(model.linear.weight, ckpt['state_dict']['linear.weight'])


def test_stock_torch_refuses_runner_checkpoint(runner_checkpoint):
    """Without adpe_mm the same file fails: the allow-list is what makes it load."""
    code = f'import torch; torch.load({runner_checkpoint!r})'
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert proc.returncode != 0
    assert 'HistoryBuffer' in proc.stderr


class _Foreign:

    def __init__(self):
        self.payload = 1


class _GetattrOnHistoryBuffer:
    """Pickles as ``getattr(HistoryBuffer, name)``, the form the allow-list maps to a restricted getattr."""

    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        return getattr, (HistoryBuffer, self.name)


@pytest.mark.parametrize('obj', [
    _Foreign(),
    np.array([1, 2], dtype=object),
    _GetattrOnHistoryBuffer('update'),
    _GetattrOnHistoryBuffer('__init__'),
], ids=['custom_class_instance', 'object_dtype_array', 'getattr_other_method', 'getattr_dunder'])
def test_checkpoint_with_foreign_object_is_refused(tmp_path, obj):
    path = tmp_path / 'foreign.pth'
    torch.save(dict(state_dict=dict(w=torch.zeros(1)), extra=obj), path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


def test_statistics_methods_are_reachable_through_getattr(tmp_path):
    path = tmp_path / 'stat.pth'
    torch.save(_GetattrOnHistoryBuffer('mean'), path)
    assert torch.load(path) is HistoryBuffer.mean


def test_register_is_idempotent():
    before = list(torch.serialization.get_safe_globals())
    register_mmengine_safe_globals()
    register_mmengine_safe_globals()
    assert list(torch.serialization.get_safe_globals()) == before


def test_allow_list_has_no_free_getattr_and_no_object_dtype():
    entries = [e[0] if isinstance(e, tuple) else e for e in mmengine_safe_globals()]
    assert getattr not in entries
    assert type(np.dtype(object)) not in entries
