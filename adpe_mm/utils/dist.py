"""CPU fallback for distributed runs: gloo instead of NCCL when no GPU is visible."""
from datetime import timedelta

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict


def use_gloo_without_cuda(cfg: Config) -> bool:
    """Make a distributed run work on CPU-only machines (tests, CI); a no-op when CUDA is available.

    NCCL needs CUDA, so ``env_cfg.dist_cfg.backend`` becomes ``'gloo'``. mmengine 0.10.7 also assumes a GPU
    per process in two places, both worked around here without touching mmengine:

    - ``init_dist`` calls ``torch.cuda.set_device`` unconditionally, so for the ``pytorch`` launcher
      (torchrun) the process group is initialised here; the Runner finds it initialised and skips its own.
    - the model is wrapped with ``DistributedDataParallel(device_ids=[LOCAL_RANK])``, which DDP rejects for
      a CPU module, so ``model_wrapper_cfg`` gets ``device_ids=None``.

    Args:
        cfg: the full config; ``cfg.launcher`` names the launcher.

    Returns:
        Whether the CPU fallback was applied.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return False
    cfg.setdefault('env_cfg', ConfigDict())
    cfg.env_cfg.setdefault('dist_cfg', ConfigDict())
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or ConfigDict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    if 'DistributedDataParallel' in wrapper.get('type', 'MMDistributedDataParallel'):
        wrapper.device_ids = None
    cfg.model_wrapper_cfg = wrapper
    if launcher != 'pytorch':
        raise RuntimeError(f'launcher {launcher!r} without CUDA is not supported (mmengine pins each process '
                           f'to a GPU); use tools/dist_train.sh (torchrun, launcher pytorch) on CPU machines')
    if not torch_dist.is_initialized():
        dist_cfg = dict(cfg.env_cfg.dist_cfg)
        dist_cfg.pop('backend')
        timeout = dist_cfg.pop('timeout', None)
        if timeout is not None:
            dist_cfg['timeout'] = timedelta(seconds=timeout)
        torch_dist.init_process_group(backend='gloo', **dist_cfg)  # rank/world size from torchrun's env
    return True


def shutdown_dist() -> None:
    """Destroy the process group at the end of a tool: a gloo group left to interpreter exit can abort a rank
    ("terminate called without an active exception") after the work is done, failing the whole torchrun."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
