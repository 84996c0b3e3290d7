"""Segmentation adapters for mmseg 1.x (imported only by segmentation configs).

``import mmseg.models`` needs the compiled mmcv ops, so a broken mmcv build fails here, at import, with the
fix in the message instead of deep inside model building.
"""
from ..utils.mmcv_ops import require_mmcv_ops

require_mmcv_ops(__name__)
