"""Mean attention distance (Dosovitskiy et al. 2020, Fig. 7) per block, in patches.

For a query patch i the attention distance is the expected distance to the key patches under its attention,
``sum_j a_ij d_ij / sum_j a_ij`` over patch keys j, with ``d_ij`` the Euclidean distance between the centres
of patches i and j in patch units. Attention on the cls token has no position: it is left out and the
remaining weights are renormalised (so a query that attends to cls does not look "local"). The per-head value
is the mean over query patches and images. AdPE should make it grow: the adversary stops the encoder from
predicting a patch from its neighbours.
"""
from typing import Iterable, Optional, Tuple

import torch
from torch import nn

from .attention import attention_weights, num_extra_tokens, patch_grid


def patch_distances(hw: Tuple[int, int], device=None) -> torch.Tensor:
    """Euclidean distances [N, N] between the centres of the patches of an (h, w) grid, in patches."""
    rows, cols = torch.meshgrid(torch.arange(hw[0], dtype=torch.float32, device=device),
                                torch.arange(hw[1], dtype=torch.float32, device=device), indexing='ij')
    coords = torch.stack([rows.flatten(), cols.flatten()], dim=1)  # [N, 2] (row, col)
    return torch.cdist(coords, coords)


def mean_attention_distance(attn: torch.Tensor, hw: Tuple[int, int], extra_tokens: int = 1) -> torch.Tensor:
    """Mean attention distance per head, [H], in patches, of weights ``attn`` [B, H, L, L].

    The leading ``extra_tokens`` (cls) are dropped as queries and keys; each query row is renormalised over
    the patch keys.
    """
    a = attn[..., extra_tokens:, extra_tokens:].float()  # [B, H, N, N] patch queries x patch keys
    if a.shape[-1] != hw[0] * hw[1]:
        raise ValueError(f'{a.shape[-1]} patch tokens do not fill a {hw} grid')
    a = a / a.sum(dim=-1, keepdim=True).clamp(min=torch.finfo(a.dtype).tiny)
    per_query = (a * patch_distances(hw, a.device)).sum(dim=-1)  # [B, H, N]
    return per_query.mean(dim=(0, 2))


@torch.no_grad()
def attention_distance_per_layer(backbone: nn.Module, images: torch.Tensor, batch_size: int = 32,
                                 layers: Optional[Iterable[int]] = None) -> torch.Tensor:
    """Mean attention distance [num_layers, H] of every block (or of ``layers``, in that order), in patches,
    over the images [B, 3, H, W] (normalised model inputs), processed ``batch_size`` at a time."""
    layers = list(range(len(backbone.layers))) if layers is None else [i % len(backbone.layers) for i in layers]
    total = None
    for start in range(0, images.shape[0], batch_size):
        batch = images[start:start + batch_size]
        attn = attention_weights(backbone, batch, layers)
        hw = patch_grid(backbone, batch)
        dist = torch.stack([mean_attention_distance(attn[i], hw, num_extra_tokens(backbone)) for i in layers])
        dist = dist * batch.shape[0]  # a sum over images, so unequal batches weigh by their size
        total = dist if total is None else total + dist
    return total / images.shape[0]
