"""Mean attention distance: hand-computed values on a 2x2 patch grid."""
import math

import torch

from adpe_mm.analysis import mean_attention_distance, patch_distances

R2 = math.sqrt(2)


def test_patch_distances_of_a_2x2_grid_in_patches():
    # patches in row-major order: (0, 0), (0, 1), (1, 0), (1, 1)
    expected = torch.tensor([[0, 1, 1, R2], [1, 0, R2, 1], [1, R2, 0, 1], [R2, 1, 1, 0]])
    assert torch.allclose(patch_distances((2, 2)), expected)


def hand_built_attention():
    """[1, 2, 5, 5]: token 0 is cls, tokens 1-4 the patches of a 2x2 grid. Head 1 attends to itself only."""
    head0 = torch.tensor([
        [.2, .2, .2, .2, .2],  # cls query: ignored
        [.5, .5, 0., 0., 0.],  # patch (0,0): half on cls, half on itself -> renormalised: itself -> 0
        [0., .5, 0., .5, 0.],  # patch (0,1): (0,0) at 1 and (1,0) at sqrt(2) -> (1 + sqrt(2)) / 2
        [0., 0., 1., 0., 0.],  # patch (1,0): (0,1) at sqrt(2) -> sqrt(2)
        [0., .25, .25, .25, .25],  # patch (1,1): sqrt(2), 1, 1, 0 -> (2 + sqrt(2)) / 4
    ])
    head1 = torch.eye(5)
    return torch.stack([head0, head1])[None]


def test_mean_attention_distance_equals_the_hand_computed_value_per_head():
    by_hand = (0 + (1 + R2) / 2 + R2 + (2 + R2) / 4) / 4  # mean over the four query patches = 0.8687...
    dist = mean_attention_distance(hand_built_attention(), (2, 2), extra_tokens=1)
    assert torch.allclose(dist, torch.tensor([by_hand, 0.]))


def test_mean_attention_distance_averages_over_images():
    attn = hand_built_attention()
    two_images = torch.cat([attn, attn.flip(1)])  # the second image has the heads swapped
    dist = mean_attention_distance(two_images, (2, 2), extra_tokens=1)
    assert torch.allclose(dist, mean_attention_distance(attn, (2, 2)).mean().expand(2))
