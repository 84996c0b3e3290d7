"""Attention weights of ViT encoder blocks, read off the clean, unmasked forward.

Works for the encoders of this project (``MAEPlusViT`` / ``IRPEViT``, whose attention exposes ``logits``, the
reference formula with the iRPE bias) and for mmpretrain's ``MAEViT`` / ``VisionTransformer`` (whose
``MultiheadAttention`` only has ``qkv``: the weights are ``softmax(q k^T / sqrt(d))``).

All tokens are visible (no mask token, no adversary): the attention a downstream user of the encoder gets.
That is also the only forward in which every query position exists for stock MAE, whose pretraining encoder
drops the masked tokens.
"""
import inspect
from typing import Dict, Iterable, List, Sequence, Tuple

import torch
from torch import nn


class _EnoughLayers(Exception):
    """Raised by the last hook to skip the blocks after it."""


def attention_from_inputs(attn: nn.Module, args: tuple) -> torch.Tensor:
    """Softmax attention weights [B, H, L, L] of attention module ``attn`` called with ``args``.

    ``args`` are the positional inputs of ``attn.forward``: ``(x [B, L, D], ctx)`` for this project's
    ``Attention`` (the iRPE bias is included), ``(x,)`` for mmpretrain's ``MultiheadAttention``.
    """
    x = args[0]
    if hasattr(attn, 'logits'):
        ctx = args[1] if len(args) > 1 else None
        return attn.logits(x, ctx).softmax(dim=-1)
    if hasattr(attn, 'qkv') and hasattr(attn, 'num_heads'):
        B, L, _ = x.shape
        d = attn.qkv.out_features // 3 // attn.num_heads
        q, k, _ = attn.qkv(x).reshape(B, L, 3, attn.num_heads, d).permute(2, 0, 3, 1, 4)  # each [B, H, L, d]
        return (q * d**-0.5 @ k.transpose(-2, -1)).softmax(dim=-1)
    raise TypeError(f'cannot read attention weights from {type(attn).__name__}: it has neither `logits` '
                    '(adpe_mm Attention) nor `qkv` and `num_heads` (mmpretrain MultiheadAttention)')


def patch_size_of(backbone: nn.Module) -> int:
    """Pixels per patch side of a ViT backbone (mmpretrain's ``img_size`` / ``patch_resolution``)."""
    return backbone.img_size[0] // backbone.patch_resolution[0]


def patch_grid(backbone: nn.Module, images: torch.Tensor) -> Tuple[int, int]:
    """The (h, w) patch grid of ``images`` [B, 3, H, W]."""
    p = patch_size_of(backbone)
    return images.shape[-2] // p, images.shape[-1] // p


def unmasked_forward(backbone: nn.Module, images: torch.Tensor):
    """The plain ViT forward of a pretraining encoder (``mask=None`` where the forward takes a mask)."""
    if 'mask' in inspect.signature(backbone.forward).parameters:
        return backbone(images, mask=None)
    return backbone(images)


@torch.no_grad()
def attention_weights(backbone: nn.Module, images: torch.Tensor,
                      layers: Iterable[int] = (0, )) -> Dict[int, torch.Tensor]:
    """Attention weights of blocks ``layers`` for ``images`` [B, 3, H, W] (normalised, as the model sees them).

    The backbone runs in eval mode (no dropout, no drop path) and stops after the last requested block.

    Returns:
        dict: block index (non-negative) -> float32 weights [B, H, L, L], L = extra tokens (cls) + h * w;
        rows are queries and sum to 1.
    """
    num_layers = len(backbone.layers)
    wanted = sorted({i % num_layers for i in layers})
    if not wanted:
        raise ValueError('no layers requested')
    out: Dict[int, torch.Tensor] = {}

    def make_hook(index: int):

        def hook(module, args):
            out[index] = attention_from_inputs(module, args).float()
            if index == wanted[-1]:
                raise _EnoughLayers

        return hook

    handles = [backbone.layers[i].attn.register_forward_pre_hook(make_hook(i)) for i in wanted]
    was_training = backbone.training
    backbone.eval()
    try:
        unmasked_forward(backbone, images)
    except _EnoughLayers:
        pass
    finally:
        for handle in handles:
            handle.remove()
        backbone.train(was_training)
    hw = patch_grid(backbone, images)
    length = out[wanted[0]].shape[-1]
    if length != num_extra_tokens(backbone) + hw[0] * hw[1]:
        raise ValueError(f'{length} tokens do not match a {hw} patch grid with {num_extra_tokens(backbone)} '
                         'extra tokens')
    return out


def num_extra_tokens(backbone: nn.Module) -> int:
    """Tokens in front of the patch tokens (1 for the cls token)."""
    return int(getattr(backbone, 'num_extra_tokens', 1))


def query_patch(point: Sequence[float], hw: Tuple[int, int]) -> Tuple[int, int]:
    """The (row, col) patch that contains ``point`` = (y, x), given as fractions of the image in [0, 1]."""
    y, x = point
    if not (0 <= y <= 1 and 0 <= x <= 1):
        raise ValueError(f'query point {tuple(point)} must be (y, x) fractions of the image in [0, 1]')
    return min(int(y * hw[0]), hw[0] - 1), min(int(x * hw[1]), hw[1] - 1)


def query_maps(attn: torch.Tensor, hw: Tuple[int, int], queries: List[Tuple[int, int]], extra_tokens: int = 1,
               head: int = None) -> torch.Tensor:
    """Attention of query patches over the patch grid.

    Args:
        attn (Tensor): weights [B, H, L, L] from :func:`attention_weights`.
        hw (tuple): the patch grid (h, w).
        queries (list): (row, col) query patches.
        extra_tokens (int): leading non-patch tokens (cls), dropped as queries and keys.
        head (int, optional): one head; None (default) averages the heads.

    Returns:
        Tensor: [B, Q, h, w], the raw attention weights on the patch keys (the cls key's share is not
        redistributed, so a map sums to 1 minus the attention on the cls token).
    """
    a = attn.mean(dim=1) if head is None else attn[:, head]  # [B, L, L]
    rows = torch.tensor([extra_tokens + r * hw[1] + c for r, c in queries], device=attn.device)
    maps = a[:, rows, extra_tokens:]  # [B, Q, h*w]
    return maps.reshape(a.shape[0], len(queries), hw[0], hw[1])
