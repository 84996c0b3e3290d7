from .irpe import (IRPE, INDEX_MODES, LOOKUPS, axis_corners, bucket_index, decode_lookup, encode_lookup,
                   piecewise_index, relaxed_corners, relaxed_index, relaxed_lookup_matrix, saturation_offset,
                   saturation_radius)
from .sincos import grid_coords, sincos_2d, sincos_2d_table

__all__ = [
    'IRPE', 'INDEX_MODES', 'LOOKUPS', 'axis_corners', 'bucket_index', 'decode_lookup', 'encode_lookup',
    'piecewise_index', 'relaxed_index', 'relaxed_corners', 'relaxed_lookup_matrix', 'saturation_offset',
    'saturation_radius', 'sincos_2d', 'sincos_2d_table', 'grid_coords'
]
