from .adversary_hook import AdversaryHook
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .compile_hook import CompileHook
from .finite_loss_hook import FiniteLossHook, NonFiniteTrainingError
from .reconstruction_hook import ReconstructionHook

__all__ = ['AdversaryHook', 'AtomicCheckpointHook', 'CompileHook', 'FiniteLossHook', 'NonFiniteTrainingError', 'ReconstructionHook']
from .attention_distance_hook import AttentionDistanceHook  # noqa: E402,F401
