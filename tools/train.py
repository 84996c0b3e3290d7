"""Train with an mmpretrain, mmdet or mmseg config through the stock mmengine Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
    bash tools/dist_train.sh CONFIG GPUS [args]   # torchrun, --launcher pytorch

The library that builds the components is the config's ``default_scope`` (mmpretrain when it has none).
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import adpe_mm  # noqa: F401  registers adpe_mm's components and its torch.load allow-list
from adpe_mm.utils import shutdown_dist, use_gloo_without_cuda

# Optimizer wrapper -> its mixed-precision counterpart for --amp. AmpAdvOptimWrapper is adpe_mm's
# (registered in mmpretrain's OPTIM_WRAPPERS).
AMP_WRAPPERS = {'OptimWrapper': 'AmpOptimWrapper', 'AdvOptimWrapper': 'AmpAdvOptimWrapper'}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model with an OpenMMLab config')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and checkpoints')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint; without a path, from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true', help='mixed-precision training (needs a GPU)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. train_dataloader.dataset.data_root=data/imagenet')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def switch_to_amp(optim_wrapper: ConfigDict) -> None:
    """Turn the optimizer wrapper config into its AMP counterpart (in place)."""
    wrapper_type = optim_wrapper.get('type', 'OptimWrapper')
    scope, _, name = wrapper_type.rpartition('.')
    if name.startswith('Amp'):
        print_log(f'--amp: optim_wrapper type is already {wrapper_type}', logger='current')
        return
    if name not in AMP_WRAPPERS:
        raise ValueError(f'--amp does not know the mixed-precision version of optim_wrapper type '
                         f'{wrapper_type!r}; known: {AMP_WRAPPERS}')
    optim_wrapper.type = f'{scope}.{AMP_WRAPPERS[name]}' if scope else AMP_WRAPPERS[name]
    optim_wrapper.setdefault('loss_scale', 'dynamic')


def merge_args(cfg: Config, args) -> Config:
    """Apply the command line to the config."""
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.get('default_scope') is None:
        cfg.default_scope = 'mmpretrain'

    # work_dir: command line > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        switch_to_amp(cfg.optim_wrapper)

    # --resume: from the latest checkpoint of work_dir (mmengine's auto resume) or from a given file.
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    use_gloo_without_cuda(cfg)  # NCCL needs CUDA: CPU-only distributed runs use gloo
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    runner.train()
    shutdown_dist()


if __name__ == '__main__':
    main()
