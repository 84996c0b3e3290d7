"""adpe_mm: AdPE (adversarial positional embeddings) and MAE+ for the OpenMMLab stack.

Importing the package registers every component (models, transforms, optimizer wrappers, hooks) in
mmpretrain's registries, and allow-lists mmengine's checkpoint contents for ``torch.load(weights_only=True)``.
Detection and segmentation adapters live in ``adpe_mm.det`` / ``adpe_mm.seg``, imported by their configs.
"""
from .utils import register_mmengine_safe_globals
from .version import __version__

# mmengine loads checkpoints with torch.load(weights_only=True) under torch >= 2.6; allow-list exactly what
# its runner checkpoints pickle (see adpe_mm/utils/checkpoint.py) so resume and load_from work.
register_mmengine_safe_globals()

from . import datasets, engine, models, visualization  # noqa: E402,F401

__all__ = ['__version__']
