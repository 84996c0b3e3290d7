"""User-facing entry points: :class:`MIMInferencer` (reconstructions and encoder features from Python)."""
from .inference import MIMInferencer, MIMResult

__all__ = ['MIMInferencer', 'MIMResult']
