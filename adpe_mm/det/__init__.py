"""Detection adapters for mmdet 3.x (imported only by detection configs).

mmdet's RoI heads and nms need the compiled mmcv ops, so a broken mmcv build fails here, at import, with
the fix in the message instead of deep inside model building.
"""
from ..utils.mmcv_ops import require_mmcv_ops

require_mmcv_ops(__name__)
