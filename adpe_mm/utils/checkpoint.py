"""Let torch >= 2.6 ``weights_only`` loading accept mmengine 0.10.7 runner checkpoints, and nothing more.

mmengine loads checkpoints with a plain ``torch.load``, which since torch 2.6 only unpickles tensors,
containers and allow-listed globals. A runner checkpoint (``IterBasedTrainLoop`` or
``EpochBasedTrainLoop``) additionally pickles its ``message_hub``: :class:`HistoryBuffer` objects that hold
numpy arrays, numpy scalars in ``runtime_info`` and, through ``HistoryBuffer.__getstate__``, the buffer's
statistics methods (``HistoryBuffer.min`` ...), which pickle protocol 2 writes as
``getattr(HistoryBuffer, 'min')``.

The globals below are exactly what ``torch.load(weights_only=True)`` refused on such checkpoints, found by
saving one with each loop and allow-listing the refused global one at a time (see
``tests/test_utils/test_checkpoint.py``). ``builtins.getattr`` is not allow-listed itself: a free getattr
would let a pickle walk from any allowed object to arbitrary callables. In its place the pickle's
``builtins.getattr`` resolves to :func:`_history_buffer_statistic`, which only hands out the statistics
methods of :class:`HistoryBuffer`. Any other pickled object (a custom class instance, an object-dtype array)
is still refused.
"""
from typing import Any, Callable, List, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

# The statistics that ``HistoryBuffer._set_default_statistics`` registers; the only attributes a
# checkpoint may fetch with ``getattr``. Custom statistics registered elsewhere are pickled under their own
# module name and stay refused.
_HISTORY_BUFFER_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})

# numpy dtypes that message hub scalars and history arrays are stored in. Object, void (structured), string
# and datetime dtypes are left out on purpose: object arrays are how arbitrary objects hide in a pickle.
_NUMERIC_SCALAR_TYPES = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                         np.uint64, np.float16, np.float32, np.float64)

_registered = False


def _history_buffer_statistic(owner: Any, name: str) -> Callable:
    """A ``getattr`` restricted to ``HistoryBuffer``'s default statistics methods.

    Raises:
        pickle.UnpicklingError: for any other (owner, name) pair.
    """
    if owner is HistoryBuffer and name in _HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    import pickle
    raise pickle.UnpicklingError(
        f'adpe_mm refuses getattr({owner!r}, {name!r}) in a weights_only checkpoint: only the statistics '
        f'methods {sorted(_HISTORY_BUFFER_STATISTICS)} of mmengine HistoryBuffer are allowed.')


def mmengine_safe_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """The allow-list for :func:`torch.serialization.add_safe_globals` (objects or (object, pickle name))."""
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    safe: List[Union[Callable, Tuple[Callable, str]]] = [
        HistoryBuffer,
        (_history_buffer_statistic, 'builtins.getattr'),
        np.ndarray,
        np.dtype,
    ]
    # numpy 2 writes ``numpy._core.multiarray``, numpy 1.x ``numpy.core.multiarray``: accept checkpoints
    # written under either, whichever numpy is installed here.
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        safe.append((multiarray._reconstruct, f'{module}._reconstruct'))
        safe.append((multiarray.scalar, f'{module}.scalar'))
    # A pickled dtype is ``numpy.dtype('f8', ...)`` followed by a BUILD on the instance, whose class
    # (e.g. ``numpy.dtypes.Float64DType``) must be allowed too.
    safe.extend(type(np.dtype(t)) for t in _NUMERIC_SCALAR_TYPES)
    return safe


def register_mmengine_safe_globals() -> None:
    """Allow-list the globals of mmengine runner checkpoints for ``torch.load(weights_only=True)``.

    Idempotent: a second call does nothing. Does not change ``torch.load``'s default or any other check.
    """
    global _registered
    if _registered:
        return
    torch.serialization.add_safe_globals(mmengine_safe_globals())
    _registered = True
