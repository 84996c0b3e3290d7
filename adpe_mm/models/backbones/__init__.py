from .irpe_vit import IRPEViT
from .mae_plus_vit import MAEPlusViT
from .plain_vit import PlainViT
from .vit_core import ViTCore

__all__ = ['IRPEViT', 'MAEPlusViT', 'PlainViT', 'ViTCore']
