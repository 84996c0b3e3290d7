"""The FGSM baseline of App. B: MAE+ trained on pixel-level adversarial crops (one signed-gradient step)."""
import math
from typing import Dict, List, Union

import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .mae_plus import MAEPlus


@MODELS.register_module()
class MAEPlusFGSM(MAEPlus):
    """MAE+ whose encoder sees ``crops + eps * sign(grad_crops L)`` (l_inf FGSM, Goodfellow et al. 2014).

    Every iteration:

    1. draw the masks of the k*B crops (``draw_mask``, the same resumable stream as MAE+);
    2. one extra forward/backward of the MAE+ loss with these masks gives the gradient with respect to the
       crops only (``torch.autograd.grad``: no weight ``.grad`` is touched, no optimizer sees this pass);
    3. the perturbed crops ``crops + eps * sign(g)`` are encoded with the SAME masks and the loss is the
       usual reconstruction loss, which the optimizer minimises.

    Decisions (App. B leaves them open):

    - **The target stays clean.** The "label" of MIM is the image itself; as in classic FGSM the label is not
      attacked: the perturbation acts on the encoder input and the loss reconstructs the clean crop. The
      input gradient is taken with the target held fixed.
    - **Same mask for attack and training.** Masked patches enter the encoder as the mask token, so their
      pixels get zero gradient and zero perturbation; drawing a new mask for the training pass would expose
      unperturbed patches. With one mask, every visible pixel is moved by exactly +-eps.
    - **No clamping to the valid pixel range**, so ``||delta||_inf = eps`` holds exactly (eps <= 0.1 in
      normalised units is about 6/255 of the pixel range).
    - The gradient pass sums the loss over crops instead of averaging (the sign is unchanged): per-pixel
      gradients of a batch mean are k*B times smaller and may underflow to 0 (no perturbation) under fp16.

    ``adv_gap`` (loss on the perturbed crops minus loss on the clean crops, same weights and masks) is logged
    every iteration; the clean loss comes for free from the gradient pass.

    Args:
        eps (float): l_inf radius in normalised pixel units (the data preprocessor's output), > 0. The
            paper's grid is 0.001, 0.01 and 0.1.
        Other arguments: see :class:`MAEPlus`.
    """

    def __init__(self, *args, eps: float, **kwargs) -> None:
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
            raise ValueError(f'FGSM eps must be a finite number > 0 (normalised pixel units), got {eps!r}')
        super().__init__(*args, **kwargs)
        self.eps = float(eps)

    def fgsm_perturbation(self, crops: torch.Tensor, mask: torch.Tensor):
        """``eps * sign(grad_crops L)`` [B, 3, h, w] and the clean loss (detached) of crops with masks [B, N]."""
        with torch.enable_grad():
            x = crops.detach().requires_grad_(True)
            pred, used_mask = self.reconstruct(x, patch_mask=mask)
            clean = self.head.loss(pred, crops.detach(), used_mask)
            grad, = torch.autograd.grad(clean * crops.shape[0], x)
        return self.eps * grad.sign(), clean.detach()

    def loss(self, inputs: Union[torch.Tensor, List[torch.Tensor]], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """The reconstruction loss of the FGSM-perturbed crops (targets: the clean crops)."""
        crops = self.stack_crops(inputs)  # [k*B, 3, h, w]
        mask = self.draw_mask(crops.shape[0], crops.device)  # [k*B, N] bool, the resumable mask stream
        delta, clean = self.fgsm_perturbation(crops, mask)
        pred, mask = self.reconstruct(crops + delta, patch_mask=mask)
        loss = self.head.loss(pred, crops, mask)
        return dict(loss=loss, adv_gap=loss.detach() - clean)
