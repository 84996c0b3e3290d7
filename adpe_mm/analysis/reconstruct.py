"""Masked reconstruction of images by any MAE / MAE+ / AdPE pretraining model."""
from typing import Tuple

import torch
from torch import nn


@torch.no_grad()
def reconstruct(model: nn.Module, images: torch.Tensor, seed: int = 0,
                adversarial: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """Predicted patches [B, N, p*p*3] and the mask [B, N] (1 = masked) of ``images`` [B, 3, H, W].

    The mask is drawn from ``seed`` in a forked RNG (the caller's random stream is untouched), so the same
    seed gives the same masks for models with the same patch grid.

    - MAE+ / AdPE / FGSM (``MAEPlus`` and subclasses): ``model.reconstruct``; ``adversarial`` applies the AdPE
      adversaries (default False: what the model has learned, not what its adversary does to it).
    - stock MAE: the backbone drops the masked tokens (``(latent, mask, ids_restore)``) and the neck restores
      them (``neck(latent, ids_restore)``); ``adversarial`` does not apply.
    """
    model.eval()
    devices = [images.device] if images.is_cuda else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        if hasattr(model, 'reconstruct'):
            mask = model.backbone.random_masking(images.shape[0], images.device)
            pred, mask = model.reconstruct(images, adversarial=adversarial, patch_mask=mask)
        else:
            latent, mask, ids_restore = model.backbone(images)
            pred = model.neck(latent, ids_restore)
    return pred, mask.float()
