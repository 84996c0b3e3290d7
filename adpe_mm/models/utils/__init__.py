from .attention import Attention, AttentionContext
from .transformer_layer import TransformerLayer

__all__ = ['Attention', 'AttentionContext', 'TransformerLayer']
