"""Test-only hooks for training processes that the tests start (imported through ``custom_imports``;
tests/dist_helpers.py and the checkpoint tests put this folder on their PYTHONPATH).

* :class:`RankStateHook`: every rank saves its own final model state, so that the multi-process tests can
  show that all ranks ended with the same weights and adversaries (the runner's checkpoints are rank 0's).
* :class:`KillDuringCheckpointWrite`: at one checkpoint, write half of it and SIGKILL the process, as a
  power cut or an out-of-memory kill would.
"""
import os
import os.path as osp
import signal

import torch
from mmengine.dist import get_rank
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RankStateHook(Hook):
    """After training, save ``model.state_dict()`` (unwrapped) to ``<work_dir>/rank<r>_state.pth``."""

    priority = 'LOWEST'

    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        torch.save(state, osp.join(runner.work_dir, f'rank{get_rank()}_state.pth'))


@HOOKS.register_module()
class KillDuringCheckpointWrite(Hook):
    """When the checkpoint of iteration ``at_iter`` is written, write half its bytes and SIGKILL the process."""

    def __init__(self, at_iter: int):
        self.at_iter = at_iter

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if checkpoint['meta']['iter'] != self.at_iter:
            return

        def put_half_then_die(backend, obj: bytes, filepath) -> None:
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
                f.flush()
                os.fsync(f.fileno())
            os.kill(os.getpid(), signal.SIGKILL)

        LocalBackend.put = put_half_then_die
