from .irpe import (IRPE, bucket_index, decode_lookup, encode_lookup, piecewise_index, relaxed_corners, relaxed_index,
                   relaxed_lookup_matrix)
from .sincos import grid_coords, sincos_2d, sincos_2d_table

__all__ = [
    'IRPE', 'bucket_index', 'decode_lookup', 'encode_lookup', 'piecewise_index', 'relaxed_index',
    'relaxed_corners', 'relaxed_lookup_matrix', 'sincos_2d', 'sincos_2d_table', 'grid_coords'
]
