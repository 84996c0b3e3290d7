from .checkpoint import mmengine_safe_globals, register_mmengine_safe_globals
from .dist import shutdown_dist, use_gloo_without_cuda
from .mmcv_ops import require_mmcv_ops

__all__ = [
    'mmengine_safe_globals', 'register_mmengine_safe_globals', 'require_mmcv_ops', 'shutdown_dist',
    'use_gloo_without_cuda'
]
