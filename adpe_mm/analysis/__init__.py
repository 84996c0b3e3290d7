"""Analysis of pretrained MAE / MAE+ / AdPE models: attention maps, attention distance, reconstructions, logs.

Used by the tools in ``tools/analysis_tools`` and by ``AttentionDistanceHook``. Nothing here registers
anything; drawing (matplotlib) stays in the tools.
"""
from .attention import attention_weights, query_maps, query_patch
from .attention_distance import attention_distance_per_layer, mean_attention_distance, patch_distances
from .pretrained import list_images, load_images, load_pretrainer, normalisation
from .reconstruct import reconstruct
from .training_log import read_scalars

__all__ = [
    'attention_weights', 'query_maps', 'query_patch', 'attention_distance_per_layer', 'mean_attention_distance',
    'patch_distances', 'list_images', 'load_images', 'load_pretrainer', 'normalisation', 'reconstruct',
    'read_scalars'
]
