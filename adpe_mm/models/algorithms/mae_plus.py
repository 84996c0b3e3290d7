"""MAE+ (and AdPE, which is MAE+ with adversaries): multi-crop masked image modeling."""
from typing import Dict, List, Optional, Union

import torch
import torch.distributed as torch_dist
from mmengine.dist import get_rank, get_world_size
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..utils.adversary import is_adversary, pgd_step_


@MODELS.register_module()
class MAEPlus(BaseSelfSupervisor):
    """MAE+: k crops per image, every crop encoded whole with masked tokens as a mask token, a light decoder.

    The k crops of a batch of B images come from the data pipeline as a list of k tensors [B, 3, h, w]
    (``MultiCrop`` + ``SelfSupDataPreprocessor``) and are stacked crop-major into one batch of k*B
    independent samples. The loss is the head's (normalised-pixel MSE over masked patches of all crops).

    Training masks come from a counter-based stream: the masks of the t-th training forward are drawn from a
    generator seeded with (process seed, rank, t), and t is the persistent buffer ``mask_step``. A resumed
    run therefore draws exactly the masks the uninterrupted run would have drawn.

    Args:
        backbone (dict): the encoder, ``MAEPlusViT``.
        neck (dict): the decoder, ``MAEPlusDecoder``.
        head (dict): the reconstruction head, mmpretrain's ``MAEPretrainHead``.
        adversary (dict, optional): the AdPE adversary, ``dict(pe='ape' | 'rpe', mode='embed' | 'coord',
            norm='l2' | 'linf', eps=float)``, handed to the backbone and the neck so a config states it
            once. None (default) is the MAE+ baseline.
        log_adv_gap (bool): with an adversary, also compute the clean loss of the same crops and masks
            (no gradient, one extra forward) and log ``adv_gap`` = adversarial - clean loss. Defaults to
            False.
        adversary_steps (int): 0 (default) is the paper's parallel mode: the optimizer ascends the adversaries
            in the weights' step. K > 0 is the sequential mode of the paper's footnote 1: before the forward
            that trains the weights, K PGD ascent steps on the adversaries with the weights frozen (inside
            the loss computation, so it works under DDP, where the model's ``train_step`` is bypassed; the
            adversary gradients are all-reduced explicitly). Pair it with ``lr_mult=0`` for the ``adv_``
            group so the optimizer leaves the adversaries to this loop.
        adversary_step_size (float): PGD step of the sequential mode as a fraction of eps (l_inf: ``+ step *
            eps * sign(g)``; l2: ``+ step * eps * g / ||g||``), followed by the projection. Defaults to 0.5.
        Other arguments: see ``BaseSelfSupervisor``.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 adversary: Optional[dict] = None,
                 log_adv_gap: bool = False,
                 adversary_steps: int = 0,
                 adversary_step_size: float = 0.5,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        if adversary is not None:
            backbone = dict(backbone, adversary=adversary)
            neck = dict(neck, adversary=adversary)
        super().__init__(backbone=backbone, neck=neck, head=head, pretrained=pretrained,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.log_adv_gap = log_adv_gap and adversary is not None
        if isinstance(adversary_steps, bool) or not isinstance(adversary_steps, int) or adversary_steps < 0:
            raise ValueError(f'adversary_steps must be an integer >= 0, got {adversary_steps!r}')
        if adversary_steps and adversary is None:
            raise ValueError(f'adversary_steps={adversary_steps} needs an adversary (model.adversary is None)')
        if not adversary_step_size > 0:
            raise ValueError(f'adversary_step_size must be > 0, got {adversary_step_size!r}')
        self.adversary_steps = adversary_steps
        self.adversary_step_size = float(adversary_step_size)
        self.register_buffer('mask_step', torch.zeros((), dtype=torch.long))

    def draw_mask(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """Masks [B, N] of the next training forward from the resumable counter-based stream."""
        seed = (torch.initial_seed() * 1_000_003 + get_rank() * 7_919 + int(self.mask_step)) % (2**63)
        generator = torch.Generator().manual_seed(seed)
        self.mask_step += 1
        return self.backbone.random_masking(batch_size, device, generator)

    def extract_feat(self, inputs: torch.Tensor):
        """Unmasked encoder features of images [B, 3, H, W] (see ``MAEPlusViT.forward``)."""
        return self.backbone(inputs, mask=None)

    @staticmethod
    def stack_crops(inputs: Union[torch.Tensor, List[torch.Tensor]]) -> torch.Tensor:
        """k crop tensors [B, 3, h, w] -> one crop-major batch [k*B, 3, h, w] (sample c*B + b)."""
        if isinstance(inputs, torch.Tensor):
            return inputs
        shapes = {tuple(t.shape) for t in inputs}
        if len(shapes) != 1:
            raise ValueError(f'all crops must have one shape to be stacked, got {sorted(shapes)}')
        return torch.cat(list(inputs), dim=0)

    def reconstruct(self, crops: torch.Tensor, adversarial: bool = True, patch_mask=None):
        """Predicted pixels [B, N, p*p*3] and the mask [B, N] of crop batch [B, 3, h, w]."""
        latent, mask = self.backbone(crops, patch_mask=patch_mask, adversarial=adversarial)
        return self.neck(latent, mask, adversarial=adversarial), mask

    def ascend_adversaries(self, crops: torch.Tensor, mask: torch.Tensor) -> None:
        """Sequential mode: ``adversary_steps`` projected ascent steps on the adversaries, weights frozen."""
        advs = [p for p in self.parameters() if is_adversary(p)]
        world = get_world_size()
        for _ in range(self.adversary_steps):
            pred, _ = self.reconstruct(crops, patch_mask=mask)
            grads = torch.autograd.grad(self.head.loss(pred, crops, mask.float()), advs, allow_unused=True)
            with torch.no_grad():
                for p, g in zip(advs, grads):
                    g = torch.zeros_like(p) if g is None else g.float()
                    if world > 1:  # identical adversaries on every rank: step on the global gradient
                        torch_dist.all_reduce(g)
                        g /= world
                    pgd_step_(p, g, self.adversary_step_size)

    def loss(self, inputs: Union[torch.Tensor, List[torch.Tensor]], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """The reconstruction loss of all crops (the adversaries ascend it, everything else descends)."""
        crops = self.stack_crops(inputs)  # [k*B, 3, h, w]
        patch_mask = self.draw_mask(crops.shape[0], crops.device)
        if self.adversary_steps and self.training:
            self.ascend_adversaries(crops, patch_mask)
        pred, mask = self.reconstruct(crops, patch_mask=patch_mask)
        losses = dict(loss=self.head.loss(pred, crops, mask))
        if self.log_adv_gap:
            with torch.no_grad():
                clean_pred, _ = self.reconstruct(crops, adversarial=False, patch_mask=mask)
                clean = self.head.loss(clean_pred, crops, mask)
            losses['adv_gap'] = losses['loss'].detach() - clean
        return losses
