from .irpe_vit import IRPEViT
from .mae_plus_vit import MAEPlusViT

__all__ = ['IRPEViT', 'MAEPlusViT']
