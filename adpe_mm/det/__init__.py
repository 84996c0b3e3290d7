"""Detection adapters for mmdet 3.x (imported only by detection configs).

mmdet's RoI heads and nms need the compiled mmcv ops, so a broken mmcv build fails here, at import, with
the fix in the message instead of deep inside model building.
"""
from ..utils.mmcv_ops import require_mmcv_ops

require_mmcv_ops(__name__)

# mmdet imports below need the ops checked above.
from mmdet.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS  # noqa: E402

from ..engine.optim_wrappers.layer_decay_constructor import ViTLayerDecayOptimWrapperConstructor  # noqa: E402
from ..models.backbones.plain_vit import PlainViT  # noqa: E402
from .simple_fpn import SimpleFPN  # noqa: E402

MODELS.register_module('PlainViT', module=PlainViT)
OPTIM_WRAPPER_CONSTRUCTORS.register_module('ViTLayerDecayOptimWrapperConstructor',
                                           module=ViTLayerDecayOptimWrapperConstructor)

__all__ = ['PlainViT', 'SimpleFPN', 'ViTLayerDecayOptimWrapperConstructor']
