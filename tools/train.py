"""Train with an mmpretrain, mmdet or mmseg config through the stock mmengine Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--auto-scale-lr] [--no-validate]
                             [--tensorboard] [--cfg-options k=v ...]
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
from adpe_mm.engine.optim_wrappers.adversarial_optim_wrapper import has_amp_device
from adpe_mm.utils import (CheckpointFileError, DataRootError, check_checkpoint_file, check_data_roots, shutdown_dist,
                           use_gloo_without_cuda)

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
    parser.add_argument(
        '--amp', action='store_true',
        help='mixed-precision training (GPU; on CPU only the adversarial wrappers, in bfloat16)')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help="scale the lr by (GPUs x batch size x accumulative_counts) / the config's auto_scale_lr.base_batch_size")
    parser.add_argument('--no-validate', action='store_true', help='skip validation during training')
    parser.add_argument(
        '--tensorboard', action='store_true',
        help='also log scalars and images (reconstruction panels) to TensorBoard in <work_dir>/<timestamp>/vis_data')
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


def switch_to_amp(optim_wrapper: ConfigDict, gpu: bool = True) -> None:
    """Turn the optimizer wrapper config into its AMP counterpart (in place).

    Without a GPU only ``AmpAdvOptimWrapper`` runs (bfloat16 autocast on CPU); mmengine's ``AmpOptimWrapper``
    asserts a GPU, so a plain wrapper is refused here with what to do instead.
    """
    wrapper_type = optim_wrapper.get('type', 'OptimWrapper')
    scope, _, name = wrapper_type.rpartition('.')
    if name.startswith('Amp'):
        amp_name = name
        print_log(f'--amp: optim_wrapper type is already {wrapper_type}', logger='current')
    elif name in AMP_WRAPPERS:
        amp_name = AMP_WRAPPERS[name]
    else:
        raise ValueError(f'--amp does not know the mixed-precision version of optim_wrapper type '
                         f'{wrapper_type!r}; known: {AMP_WRAPPERS}')
    if not gpu:
        if amp_name != 'AmpAdvOptimWrapper':
            raise ValueError(f'--amp: {amp_name} (mmengine) needs a GPU and none is visible. Train without --amp '
                             'on CPU (float32), or use a GPU machine; the AdPE configs (AdvOptimWrapper) do '
                             'run --amp on CPU, in bfloat16.')
        if optim_wrapper.get('dtype') not in (None, 'bfloat16'):
            raise ValueError(f"--amp on CPU autocasts to bfloat16 only, got optim_wrapper.dtype="
                             f"{optim_wrapper.get('dtype')!r}")
        optim_wrapper.dtype = 'bfloat16'
        print_log('--amp without a GPU: bfloat16 autocast on CPU', logger='current')
    optim_wrapper.type = f'{scope}.{amp_name}' if scope else amp_name
    optim_wrapper.setdefault('loss_scale', 'dynamic')


def enable_auto_scale_lr(cfg: Config) -> None:
    """Turn on mmengine's lr scaling, counting gradient accumulation in the batch size.

    mmengine scales by (world size x per-GPU batch) / ``base_batch_size`` and ignores
    ``optim_wrapper.accumulative_counts``; the pretraining configs state their lr for 4096 images per step
    = 8 GPUs x 128 x 4, so the base is divided by the accumulation count here.
    """
    auto = cfg.get('auto_scale_lr')
    if not auto or 'base_batch_size' not in auto:
        raise ValueError(f'--auto-scale-lr: {cfg.filename} has no auto_scale_lr=dict(base_batch_size=...)')
    accumulate = int(cfg.optim_wrapper.get('accumulative_counts', 1))
    cfg.auto_scale_lr = dict(enable=True, base_batch_size=auto['base_batch_size'] / accumulate)


def disable_validation(cfg: Config) -> None:
    """What ``--no-validate`` does: no val loop, dataloader or evaluator (the runner then skips validation)."""
    cfg.val_cfg = None
    cfg.val_dataloader = None
    cfg.val_evaluator = None


def add_tensorboard(cfg: Config) -> None:
    """Add mmengine's ``TensorboardVisBackend`` to the visualizer (its backend list is out of --cfg-options'
    reach)."""
    backends = list(cfg.visualizer.get('vis_backends') or [])
    if not any(b.get('type', '').endswith('TensorboardVisBackend') for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))
    cfg.visualizer.vis_backends = backends


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
        switch_to_amp(cfg.optim_wrapper, gpu=has_amp_device())
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg)
    if args.no_validate:
        disable_validation(cfg)
    if args.tensorboard:
        add_tensorboard(cfg)

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
    # Missing data or a broken --resume file: say so now, in words, not after the runner has built the model.
    check_data_roots(cfg, ('train', 'val'))
    if isinstance(cfg.get('load_from'), str) and '://' not in cfg.load_from:
        check_checkpoint_file(cfg.load_from)
    use_gloo_without_cuda(cfg)  # NCCL needs CUDA: CPU-only distributed runs use gloo
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    runner.train()
    shutdown_dist()


if __name__ == '__main__':
    try:
        main()
    except (CheckpointFileError, DataRootError) as err:  # what the user must fix, without a traceback
        raise SystemExit(f'tools/train.py: error: {err}')
