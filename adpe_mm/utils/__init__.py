from .checkpoint import mmengine_safe_globals, register_mmengine_safe_globals
from .checkpoint_file import (CheckpointFileError, check_checkpoint_file, load_checkpoint_file, plain_state_dict,
                              read_checkpoint, register_checked_local_loader)
from .data_roots import DataRootError, check_data_roots, missing_data_paths
from .dist import shutdown_dist, use_gloo_without_cuda
from .mmcv_ops import require_mmcv_ops

__all__ = [
    'CheckpointFileError', 'DataRootError', 'check_data_roots', 'missing_data_paths', 'check_checkpoint_file', 'load_checkpoint_file', 'plain_state_dict',
    'read_checkpoint', 'register_checked_local_loader',
    'mmengine_safe_globals', 'register_mmengine_safe_globals', 'require_mmcv_ops', 'shutdown_dist',
    'use_gloo_without_cuda'
]
