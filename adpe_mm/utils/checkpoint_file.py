"""Tell an empty, truncated or foreign file apart from a checkpoint before ``torch.load`` meets it.

``torch.load`` reports such files with errors that do not say what is wrong with the file (an empty file:
``EOFError: Ran out of input``; a cut-off zip archive: ``failed finding central directory``; a text or image
file: ``invalid load key``). :func:`check_checkpoint_file` looks at the file's framing only (size, magic
bytes, the zip archive's end record and its ``data.pkl``; no unpickling) and raises
:class:`CheckpointFileError`, one line that names the file and says what it is.

Every reader in the package goes through it: :func:`register_checked_local_loader` (called on
``import adpe_mm``) puts it in front of mmengine's local-file loader, which serves ``--resume``,
``load_from``, ``tools/test.py``, ``init_cfg=dict(type='Pretrained')`` and ``CheckpointLoader``; the
backbone loader and the converters call :func:`load_checkpoint_file`.
"""
import os
import os.path as osp
import zipfile
from typing import Any, Dict, Mapping, Tuple, Union

import torch
from mmengine.runner.checkpoint import CheckpointLoader

ZIP_MAGIC = b'PK\x03\x04'  # torch.save's default format (torch >= 1.6) is a zip archive
EXTRA_STATE_SUFFIX = '_extra_state'  # the state-dict key suffix of a module's get_extra_state()
PICKLE_PROTOCOL_2 = b'\x80\x02'  # the legacy format starts with a protocol-2 pickle of torch's magic number


class CheckpointFileError(ValueError):
    """The file is not a readable checkpoint: empty, truncated, or not a torch checkpoint at all."""


def _describe_head(head: bytes) -> str:
    if head.startswith(b'\x89PNG'):
        return 'a PNG image'
    if head.startswith(b'\xff\xd8\xff'):
        return 'a JPEG image'
    if head.startswith(b'{') or head.startswith(b'['):
        return 'JSON text'
    try:
        head.decode('utf-8')
        return 'text'
    except UnicodeDecodeError:
        return f'{len(head)} unknown leading bytes {head[:8]!r}'


def check_checkpoint_file(path: str) -> None:
    """Raise :class:`CheckpointFileError` unless ``path`` is framed like a ``torch.save`` file.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointFileError: empty, truncated (a zip archive without its end record, as an interrupted
            write leaves it), a zip archive that ``torch.save`` did not write, or another kind of file.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    size = os.path.getsize(path)
    if size == 0:
        raise CheckpointFileError(
            f'checkpoint {path} is an empty file (0 bytes), not a checkpoint: a write was interrupted; use '
            'an earlier checkpoint (the last_checkpoint file of its work_dir names the last complete one)')
    with open(path, 'rb') as f:
        head = f.read(16)
    if head.startswith(ZIP_MAGIC):
        if not zipfile.is_zipfile(path):
            raise CheckpointFileError(
                f'checkpoint {path} is truncated ({size} bytes): the zip archive that torch.save writes has no '
                'end record, so the write was cut off; use an earlier checkpoint')
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if not any(n == 'data.pkl' or n.endswith('/data.pkl') for n in names):
            raise CheckpointFileError(f'checkpoint {path} is a zip archive but not a torch checkpoint (no '
                                      f'data.pkl among its {len(names)} entries)')
        return
    if head.startswith(PICKLE_PROTOCOL_2):
        return  # torch's legacy (pre-1.6) format; torch.load checks its magic number
    raise CheckpointFileError(f'{path} is not a checkpoint: it is {_describe_head(head)} ({size} bytes), and '
                              'torch.save files are zip archives')


def load_checkpoint_file(path: str, map_location: Any = 'cpu') -> Any:
    """``torch.load(path, weights_only=True)`` after :func:`check_checkpoint_file`; a legacy-format file cut
    off mid-pickle is reported as :class:`CheckpointFileError` too."""
    check_checkpoint_file(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except EOFError as err:
        raise CheckpointFileError(f'checkpoint {path} is truncated ({os.path.getsize(path)} bytes): the '
                                  f'pickle ends early ({err})') from err


def register_checked_local_loader() -> None:
    """Check local files with :func:`check_checkpoint_file` in mmengine's ``CheckpointLoader``.

    Replaces the loader of the empty prefix (local paths) with one that checks the file and then calls
    mmengine's own ``load_from_local``, so what is loaded and how is unchanged. Idempotent.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    from mmengine.runner.checkpoint import load_from_local as mmengine_load_from_local
    if getattr(CheckpointLoader._schemes.get(''), 'checks_file', False):
        return

    # mmengine logs 'Loads checkpoint by <name minus "load_from_"> backend': keep the name 'local'.
    def load_from_local(filename: str, map_location=None):
        check_checkpoint_file(osp.expanduser(filename))
        try:
            return mmengine_load_from_local(filename, map_location)
        except EOFError as err:
            raise CheckpointFileError(f'checkpoint {filename} is truncated: the pickle ends early ({err})') from err

    load_from_local.checks_file = True
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)


__all__ = ['CheckpointFileError', 'check_checkpoint_file', 'load_checkpoint_file', 'register_checked_local_loader']


def read_checkpoint(checkpoint: Union[str, Mapping]) -> Tuple[Dict[str, object], str]:
    """The flat state dict of a checkpoint file (or of an already loaded dict) and its description.

    Local files are read with ``torch.load(weights_only=True)`` (importing adpe_mm allow-lists what mmengine
    runner checkpoints pickle); other URIs go through mmengine's ``CheckpointLoader``. A ``state_dict``
    (mmengine), ``model`` (MAE/timm releases) or ``module`` entry is unwrapped.
    """
    if isinstance(checkpoint, Mapping):
        ckpt, source = checkpoint, '<state dict>'
    else:
        source = str(checkpoint)
        if osp.isfile(source):
            ckpt = load_checkpoint_file(source)  # torch.load(weights_only=True) after a framing check
        else:
            ckpt = CheckpointLoader.load_checkpoint(source, map_location='cpu')
    for nest in ('state_dict', 'model', 'module'):
        if isinstance(ckpt, Mapping) and nest in ckpt and isinstance(ckpt[nest], Mapping):
            ckpt = ckpt[nest]
            break
    if not isinstance(ckpt, Mapping):
        raise TypeError(f'{source} holds a {type(ckpt).__name__}, not a state dict')
    return dict(ckpt), source


def plain_state_dict(state: Mapping[str, object]) -> Dict[str, object]:
    """A copy of ``state`` that ``torch.load(weights_only=True)`` accepts without any allow-list.

    Tensors (the iRPE lookup states included) become plain contiguous CPU tensors (no ``Parameter``, no shared
    storage with the model); the dict lookup states of checkpoints written before they were tensors stay the
    dicts of str/float they are. Anything else is refused.
    """
    out: Dict[str, object] = {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            out[key] = value.detach().cpu().clone().contiguous()
        elif key.endswith(EXTRA_STATE_SUFFIX) and isinstance(value, Mapping) and all(
                isinstance(v, (str, int, float, bool)) for v in value.values()):
            out[key] = dict(value)
        else:
            raise TypeError(f'{key}: {type(value).__name__} is neither a tensor nor an iRPE extra state')
    return out
