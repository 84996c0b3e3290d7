"""The building blocks of every ViT here: attention with the iRPE bias, the pre-norm block, MAE's init."""
from .attention import Attention, AttentionContext
from .init import mae_init_
from .transformer_layer import TransformerLayer

__all__ = ['Attention', 'AttentionContext', 'TransformerLayer', 'mae_init_']
