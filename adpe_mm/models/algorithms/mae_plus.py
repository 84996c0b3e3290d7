"""MAE+ (and AdPE, which is MAE+ with adversaries): multi-crop masked image modeling."""
from typing import Dict, List, Optional, Union

import torch
from mmengine.dist import get_rank
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample


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
        Other arguments: see ``BaseSelfSupervisor``.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 adversary: Optional[dict] = None,
                 log_adv_gap: bool = False,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        if adversary is not None:
            backbone = dict(backbone, adversary=adversary)
            neck = dict(neck, adversary=adversary)
        super().__init__(backbone=backbone, neck=neck, head=head, pretrained=pretrained,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.log_adv_gap = log_adv_gap and adversary is not None
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

    def loss(self, inputs: Union[torch.Tensor, List[torch.Tensor]], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """The reconstruction loss of all crops (the adversaries ascend it, everything else descends)."""
        crops = self.stack_crops(inputs)  # [k*B, 3, h, w]
        pred, mask = self.reconstruct(crops, patch_mask=self.draw_mask(crops.shape[0], crops.device))
        losses = dict(loss=self.head.loss(pred, crops, mask))
        if self.log_adv_gap:
            with torch.no_grad():
                clean_pred, _ = self.reconstruct(crops, adversarial=False, patch_mask=mask)
                clean = self.head.loss(clean_pred, crops, mask)
            losses['adv_gap'] = losses['loss'].detach() - clean
        return losses
