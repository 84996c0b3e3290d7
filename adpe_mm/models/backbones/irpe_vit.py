"""The classification backbone of MAE+/AdPE encoders (ImageNet fine-tuning and linear probing)."""
from mmpretrain.registry import MODELS

from .vit_core import ViTCore


@MODELS.register_module()
class IRPEViT(ViTCore):
    """mmpretrain's ``VisionTransformer`` whose every block may add the iRPE key bias to its attention logits.

    It is :class:`~.vit_core.ViTCore` as it is: every argument of mmpretrain's ViT, plus ``rpe`` (use the
    pretraining values: the index mode is also stored in every block's state and a mismatch is refused at
    load time) and ``fused_attn``. Without iRPE its state dict is the one of mmpretrain's ViT.
    """
