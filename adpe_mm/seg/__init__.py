"""Segmentation adapters for mmseg 1.x (imported only by segmentation configs).

``import mmseg.models`` needs the compiled mmcv ops, so a broken mmcv build fails here, at import, with the
fix in the message instead of deep inside model building.
"""
from ..utils.mmcv_ops import require_mmcv_ops

require_mmcv_ops(__name__)

# mmseg imports below need the ops checked above.
from mmseg.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS  # noqa: E402

from ..engine.optim_wrappers.layer_decay_constructor import ViTLayerDecayOptimWrapperConstructor  # noqa: E402
from ..models.backbones.plain_vit import PlainViT  # noqa: E402

# The plain ViT with several outputs (out_indices) feeds mmseg's Feature2Pyramid; the constructor decays
# the lr by the backbone's block depth whatever its class name (mmseg's own ones look for "MAE"/"BEiT").
MODELS.register_module('PlainViT', module=PlainViT)
OPTIM_WRAPPER_CONSTRUCTORS.register_module('ViTLayerDecayOptimWrapperConstructor',
                                           module=ViTLayerDecayOptimWrapperConstructor)

__all__ = ['PlainViT', 'ViTLayerDecayOptimWrapperConstructor']
