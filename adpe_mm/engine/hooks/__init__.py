from .adversary_hook import AdversaryHook
from .reconstruction_hook import ReconstructionHook

__all__ = ['AdversaryHook', 'ReconstructionHook']
from .attention_distance_hook import AttentionDistanceHook  # noqa: E402,F401
