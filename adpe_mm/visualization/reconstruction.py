"""Reconstruction panels of MAE / MAE+ / AdPE: original crop | masked input | reconstruction | + visible."""
from typing import Sequence, Tuple

import numpy as np
import torch

MASK_GREY = 0.5  # masked patches are shown as mid-grey


def patchify(imgs: torch.Tensor, p: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, N, p*p*C] in MAE's patch layout (row-major patches, (p, q, c) inside)."""
    B, C, H, W = imgs.shape
    h, w = H // p, W // p
    x = imgs.reshape(B, C, h, p, w, p)
    return torch.einsum('nchpwq->nhwpqc', x).reshape(B, h * w, p * p * C)


def unpatchify(patches: torch.Tensor, p: int, hw: Tuple[int, int], channels: int = 3) -> torch.Tensor:
    """Inverse of :func:`patchify`: [B, N, p*p*C] -> [B, C, h*p, w*p]."""
    B = patches.shape[0]
    h, w = hw
    x = patches.reshape(B, h, w, p, p, channels)
    return torch.einsum('nhwpqc->nchpwq', x).reshape(B, channels, h * p, w * p)


def denormalise_prediction(pred: torch.Tensor, target: torch.Tensor, norm_pix: bool) -> torch.Tensor:
    """Bring predictions [B, N, P] into the target's pixel space: undo the per-patch normalisation of the
    normalised-pixel loss with the statistics of the true patch (as MAE's demo does)."""
    if not norm_pix:
        return pred
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)
    return pred * (var + 1e-6)**.5 + mean


@torch.no_grad()
def reconstruction_panel(pred: torch.Tensor, mask: torch.Tensor, crops: torch.Tensor, patch_size: int,
                         mean: Sequence[float], std: Sequence[float], norm_pix: bool = True,
                         denormalise: bool = True) -> np.ndarray:
    """An RGB uint8 image with one row per crop and four columns.

    Args:
        pred (Tensor): predicted patches [B, N, p*p*3] (normalised-pixel space if ``norm_pix``).
        mask (Tensor): [B, N], 1 = masked.
        crops (Tensor): the model's normalised input crops [B, 3, H, W] (RGB).
        patch_size (int): p.
        mean, std (sequence): the data preprocessor's RGB normalisation (0-255 scale).
        norm_pix (bool): whether the model predicts per-patch normalised pixels.
        denormalise (bool): undo the per-patch normalisation with the true patch statistics (default);
            False shows the raw prediction, rescaled per crop to [0, 1] for display.

    Returns:
        ndarray: [B * H, 4 * W, 3] uint8.
    """
    crops = crops.float().cpu()
    pred = pred.float().cpu()
    mask = mask.float().cpu()
    p = patch_size
    hw = (crops.shape[2] // p, crops.shape[3] // p)
    target = patchify(crops, p)
    if denormalise:
        recon = unpatchify(denormalise_prediction(pred, target, norm_pix), p, hw)
    else:
        recon = unpatchify(pred, p, hw)
    m = unpatchify(mask[..., None].expand(-1, -1, p * p * 3), p, hw)  # 1 where masked
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def to_unit(x):  # normalised model space -> [0, 1]
        return ((x * std_t + mean_t) / 255.).clamp(0, 1)

    original = to_unit(crops)
    masked_input = original * (1 - m) + MASK_GREY * m
    if denormalise:
        recon = to_unit(recon)
    else:
        lo = recon.amin(dim=(1, 2, 3), keepdim=True)
        hi = recon.amax(dim=(1, 2, 3), keepdim=True)
        recon = (recon - lo) / (hi - lo).clamp(min=1e-6)
    pasted = original * (1 - m) + recon * m
    rows = torch.cat([original, masked_input, recon, pasted], dim=3)  # [B, 3, H, 4W]
    panel = torch.cat(list(rows), dim=1)  # [3, B*H, 4W]
    return (panel.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
