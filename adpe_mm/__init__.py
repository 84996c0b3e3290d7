"""adpe_mm: AdPE (adversarial positional embeddings) and MAE+ for the OpenMMLab stack.

Importing the package registers every component (models, transforms, optimizer wrappers, hooks) in
mmpretrain's registries, allow-lists mmengine's checkpoint contents for ``torch.load(weights_only=True)`` and
checks every local checkpoint file before it is loaded.
Detection and segmentation adapters live in ``adpe_mm.det`` / ``adpe_mm.seg``, imported by their configs.
"""
from .utils import register_checked_local_loader, register_mmengine_safe_globals
from .version import __version__

# mmengine loads checkpoints with torch.load(weights_only=True) under torch >= 2.6; allow-list exactly what
# its runner checkpoints pickle (see adpe_mm/utils/checkpoint.py) so resume and load_from work.
register_mmengine_safe_globals()
# An empty, truncated or foreign file given as a checkpoint (--resume, load_from, tools/test.py, init_cfg) is
# reported in one line naming the file (adpe_mm/utils/checkpoint_file.py), not as torch.load's EOFError.
register_checked_local_loader()

from . import datasets, engine, models, visualization  # noqa: E402,F401

__all__ = ['__version__']
