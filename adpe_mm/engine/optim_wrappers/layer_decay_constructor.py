"""Layer-wise lr decay for detectors and segmentors whose backbone is a ViT with ``get_layer_depth``.

mmpretrain's ``LearningRateDecayOptimWrapperConstructor`` asks the model for ``get_layer_depth``, which its
classifiers have and mmdet's / mmseg's models do not; mmseg's own layer-decay constructors only recognise
backbones whose class name contains "MAE" or "BEiT" (others silently get no decay). This one asks the
model's ``backbone`` instead, whatever its class name, and fails loudly when it cannot. ``adpe_mm.det`` and
``adpe_mm.seg`` register it in their libraries' registries.
"""
from functools import partial
from typing import Callable, List, Optional

from mmpretrain.engine.optimizers import LearningRateDecayOptimWrapperConstructor
from torch import nn


class ViTLayerDecayOptimWrapperConstructor(LearningRateDecayOptimWrapperConstructor):
    """lr of a parameter = ``lr * layer_decay_rate ** (num_depths - 1 - depth)``, depth from
    ``model.backbone.get_layer_depth(name, prefix='backbone.')`` (0 for the embeddings, i + 1 for block i,
    the last depth for everything outside the backbone: neck and heads train at the full lr).

    ``paramwise_cfg``: ``layer_decay_rate``, ``norm_decay_mult``, ``bias_decay_mult``, ``flat_decay_mult``
    and ``custom_keys`` (``decay_mult`` only), as in mmpretrain's constructor.
    """

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '',
                   get_layer_depth: Optional[Callable] = None, **kwargs) -> None:
        if get_layer_depth is None and not hasattr(module, 'get_layer_depth'):
            backbone = getattr(module, 'backbone', None)
            if not hasattr(backbone, 'get_layer_depth'):
                raise TypeError(f'layer-wise lr decay needs {type(module).__name__}.backbone to have '
                                f'get_layer_depth(); {type(backbone).__name__} has none')
            get_layer_depth = partial(backbone.get_layer_depth, prefix='backbone.')
        super().add_params(params, module, prefix=prefix, get_layer_depth=get_layer_depth, **kwargs)
