from .adversary_hook import AdversaryHook
from .reconstruction_hook import ReconstructionHook

__all__ = ['AdversaryHook', 'ReconstructionHook']
