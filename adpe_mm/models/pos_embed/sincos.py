"""Fixed 2-D sin-cos absolute positional embedding (APE) at real-valued coordinates.

The channel layout is exactly that of mmpretrain's ``build_2d_sincos_position_embedding`` on square grids:
the first half of the channels encodes the row, the second half the column, each half as [sin, cos] with
frequencies ``omega_k = 1 / temperature ** (k / (D / 4))``. Because the coordinates may be real numbers,
the same function serves the fixed table (integer coordinates) and the coordinate-mode adversary
(``rows + delta_y``, ``cols + delta_x``), and it is differentiable in the coordinates.
"""
from typing import Tuple

import torch


def sincos_2d(rows: torch.Tensor, cols: torch.Tensor, embed_dims: int,
              temperature: float = 10000.) -> torch.Tensor:
    """Sin-cos embedding of 2-D coordinates.

    Args:
        rows (Tensor): row coordinates in patches, any shape ``S``.
        cols (Tensor): column coordinates in patches, the same shape ``S``.
        embed_dims (int): D, a multiple of 4.
        temperature (float): the frequency base. Defaults to 10000.

    Returns:
        Tensor: shape ``S + (D,)``, float32 unless the coordinates are float64.
    """
    if embed_dims % 4 != 0:
        raise ValueError(f'sin-cos embedding needs embed_dims divisible by 4, got {embed_dims}')
    if rows.shape != cols.shape:
        raise ValueError(f'rows and cols must have the same shape, got {tuple(rows.shape)} and '
                         f'{tuple(cols.shape)}')
    dtype = torch.float64 if rows.dtype == torch.float64 else torch.float32
    pos_dim = embed_dims // 4
    omega = torch.arange(pos_dim, dtype=dtype, device=rows.device) / pos_dim
    omega = 1. / temperature**omega  # [D/4]
    out_r = rows.to(dtype)[..., None] * omega  # [*S, D/4]
    out_c = cols.to(dtype)[..., None] * omega
    return torch.cat([out_r.sin(), out_r.cos(), out_c.sin(), out_c.cos()], dim=-1)


def grid_coords(hw: Tuple[int, int], device=None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Row and column index of every patch of an ``h x w`` grid in row-major token order, each [h*w]."""
    h, w = hw
    rows = torch.arange(h, device=device, dtype=torch.float32).repeat_interleave(w)
    cols = torch.arange(w, device=device, dtype=torch.float32).repeat(h)
    return rows, cols


def sincos_2d_table(hw: Tuple[int, int], embed_dims: int, cls_token: bool = False,
                    temperature: float = 10000.) -> torch.Tensor:
    """The fixed APE table of an ``h x w`` grid: [1, (1 +) h*w, D]; the cls row (if any) is zeros."""
    table = sincos_2d(*grid_coords(hw), embed_dims, temperature)[None]
    if cls_token:
        table = torch.cat([table.new_zeros(1, 1, embed_dims), table], dim=1)
    return table
