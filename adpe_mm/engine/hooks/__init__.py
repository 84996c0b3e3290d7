from .adversary_hook import AdversaryHook

__all__ = ['AdversaryHook']
