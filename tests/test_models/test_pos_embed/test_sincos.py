import pytest
import torch
from mmpretrain.models.utils import build_2d_sincos_position_embedding

from adpe_mm.models.pos_embed import grid_coords, sincos_2d, sincos_2d_table


@pytest.mark.parametrize('side,dims', [(7, 768), (14, 768), (7, 64), (4, 1024)])
def test_table_equals_mmpretrain_at_integer_coordinates(side, dims):
    ours = sincos_2d_table((side, side), dims, cls_token=True)
    theirs = build_2d_sincos_position_embedding(side, dims, cls_token=True)
    assert ours.shape == theirs.shape == (1, side * side + 1, dims)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_first_half_encodes_rows_second_half_columns():
    rows, cols = grid_coords((3, 5))
    emb = sincos_2d(rows, cols, 16)
    same_row = emb[rows == 1]
    # Along one row the row half is constant and the column half varies.
    assert torch.allclose(same_row[:, :8], same_row[:1, :8].expand_as(same_row[:, :8]))
    assert not torch.allclose(same_row[:, 8:], same_row[:1, 8:].expand_as(same_row[:, 8:]))


def test_differentiable_in_real_coordinates():
    delta = torch.zeros(2, requires_grad=True)
    rows, cols = grid_coords((7, 7))
    emb = sincos_2d(rows + delta[0], cols + delta[1], 32)
    emb.sum().backward()
    assert delta.grad is not None and torch.all(delta.grad != 0)


def test_rejects_dims_not_divisible_by_four():
    with pytest.raises(ValueError, match='divisible by 4.*30'):
        sincos_2d(torch.zeros(3), torch.zeros(3), 30)
