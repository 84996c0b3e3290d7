from .adversary import (AdversaryBall, adversary_parameter, is_adversary, parse_adversary, project_,
                        project_l2_, project_linf_)
from .attention import Attention, AttentionContext
from .transformer_layer import TransformerLayer

__all__ = [
    'AdversaryBall', 'adversary_parameter', 'is_adversary', 'parse_adversary', 'project_', 'project_l2_',
    'project_linf_', 'Attention', 'AttentionContext', 'TransformerLayer'
]
