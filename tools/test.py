"""Evaluate a checkpoint with an mmpretrain, mmdet or mmseg config through the stock mmengine Runner.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl] [--cfg-options k=v ...]
    bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [args]
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.evaluator import DumpResults
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import adpe_mm  # noqa: F401  registers adpe_mm's components and its torch.load allow-list
from adpe_mm.utils import (CheckpointFileError, DataRootError, check_checkpoint_file, check_data_roots, shutdown_dist,
                           use_gloo_without_cuda)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a checkpoint with an OpenMMLab config')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--out', help='dump the raw predictions to this pickle file (.pkl)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='override config settings, e.g. key=value')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        parser.error('--out must be a .pkl or .pickle file')
    return args


def merge_args(cfg: Config, args) -> Config:
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.get('default_scope') is None:
        cfg.default_scope = 'mmpretrain'
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    cfg.resume = False
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    # A missing data set or a broken checkpoint file: say so now, in words, before the runner builds.
    check_data_roots(cfg, ('test', ))
    if '://' not in args.checkpoint:
        check_checkpoint_file(args.checkpoint)
    use_gloo_without_cuda(cfg)  # NCCL needs CUDA: CPU-only distributed runs use gloo
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    if args.out is not None:
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    runner.test()
    shutdown_dist()


if __name__ == '__main__':
    try:
        main()
    except (CheckpointFileError, DataRootError) as err:  # what the user must fix, without a traceback
        raise SystemExit(f'tools/test.py: error: {err}')
