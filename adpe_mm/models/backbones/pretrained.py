"""Load the encoder of a MAE+/AdPE pretraining checkpoint into any downstream backbone, and say what happened.

A pretraining checkpoint holds the encoder under ``backbone.``, the decoder under ``neck.``, a learned
``backbone.mask_token`` and, for AdPE, the adversaries (``adv_embed`` / ``adv_coord``, in the encoder or in
each block's iRPE). Downstream only the encoder is wanted:

* every key outside the prefix (decoder, head, data preprocessor) is dropped;
* ``mask_token`` and every ``adv_*`` tensor are dropped (they exist only in pretraining; a target that has
  them, i.e. the pretraining encoder itself, gets them);
* ``pos_embed`` (the 7x7 grid of 112 px crops, with a cls position) is resized bicubically to the target
  grid, and its cls position dropped when the target has no cls token; it stays a learnable parameter;
* the iRPE tables load unchanged (their buckets do not depend on the grid) together with their recorded
  ``index_mode`` / ``ratio`` extra state, which the target's :class:`~adpe_mm.models.pos_embed.IRPE`
  refuses when it was built with another lookup;
* encoder keys the target does not have (e.g. ``cls_token`` for a backbone without one, the final ``ln1``
  for a backbone without a final norm) are dropped and listed;
* target keys that the checkpoint lacks are listed as missing, except those the target declares fresh
  (``pretrained_fresh_keys``, e.g. the norm of global pooling that replaces the final norm).

Every call logs an :class:`EncoderLoadReport`. Loading nothing is an error, and so is dropping iRPE tables
(a backbone built without ``rpe`` would silently lose half of what an iRPE encoder learned).
"""
import math
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import MMLogger, print_log
from mmpretrain.models.utils import resize_pos_embed
from torch import nn

from ..pos_embed.irpe import decode_lookup
from ...utils.checkpoint_file import EXTRA_STATE_SUFFIX, read_checkpoint

# Checkpoint keys (after the prefix) that exist only in pretraining.
PRETRAIN_ONLY_NAMES = ('mask_token', )
ADVERSARY_PREFIX = 'adv_'


@dataclass
class EncoderLoadReport:
    """What :func:`load_pretrained_encoder` did with every key.

    Attributes:
        checkpoint (str): where the weights came from.
        prefix (str): the encoder prefix that was stripped ('' when the checkpoint had no such prefix).
        loaded (list): target keys that received checkpoint values.
        dropped (dict): checkpoint key (full name) -> why it was not loaded.
        missing (list): target keys the checkpoint did not provide (left as initialised).
        fresh (list): target keys that are new by design (declared by the target), not counted as missing.
        resized (dict): target key -> (checkpoint shape, loaded shape).
        rpe (dict): the iRPE lookup recorded in the checkpoint (``index_mode``, ``ratio``), or None.
    """
    checkpoint: str
    prefix: str
    loaded: List[str] = field(default_factory=list)
    dropped: Dict[str, str] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)
    fresh: List[str] = field(default_factory=list)
    resized: Dict[str, Tuple[tuple, tuple]] = field(default_factory=dict)
    rpe: Optional[dict] = None

    def summary(self) -> str:
        """Human-readable report: counts, then every dropped/missing/fresh/resized key."""
        lines = [f'load_pretrained_encoder: {self.checkpoint} (prefix {self.prefix!r}): '
                 f'{len(self.loaded)} loaded, {len(self.dropped)} dropped, {len(self.missing)} missing, '
                 f'{len(self.fresh)} fresh']
        if self.rpe is not None:
            lines.append(f'  iRPE lookup from the checkpoint: {self.rpe}')
        for key, (src, dst) in self.resized.items():
            lines.append(f'  resized {key}: {list(src)} -> {list(dst)} (bicubic)')
        by_reason: Dict[str, List[str]] = {}
        for key, reason in self.dropped.items():
            by_reason.setdefault(reason, []).append(key)
        for reason, keys in by_reason.items():
            lines.append(f'  dropped ({reason}): {_abbreviate(keys)}')
        if self.fresh:
            lines.append(f'  fresh (new in this backbone): {_abbreviate(self.fresh)}')
        if self.missing:
            lines.append(f'  MISSING (not in the checkpoint, left as initialised): {_abbreviate(self.missing)}')
        return '\n'.join(lines)


def _abbreviate(keys: Sequence[str], limit: int = 12) -> str:
    keys = list(keys)
    if len(keys) <= limit:
        return ', '.join(keys)
    return ', '.join(keys[:limit]) + f', ... ({len(keys) - limit} more)'


def is_pretrain_only(key: str) -> bool:
    """True for the encoder keys that exist only in pretraining: the mask token and every adversary."""
    leaf = key.rsplit('.', 1)[-1]
    return leaf in PRETRAIN_ONLY_NAMES or leaf.startswith(ADVERSARY_PREFIX)


def split_encoder_state(state: Mapping[str, object], prefix: str = 'backbone.', keep_pretrain_only: bool = False
                        ) -> Tuple[Dict[str, object], Dict[str, str], str]:
    """Separate the encoder of a pretraining state dict from everything else.

    Args:
        keep_pretrain_only (bool): keep the mask token and the adversaries in the encoder (the loader decides
            per target whether they are dropped). Defaults to False.

    Returns:
        tuple: ``(encoder, dropped, prefix)``: the encoder entries with ``prefix`` stripped (without the
        pretraining-only ones unless kept), the dropped full keys with the reason, and the prefix actually
        used ('' when no key carries ``prefix``: the checkpoint is already a bare backbone).
    """
    if prefix and not any(k.startswith(prefix) for k in state):
        prefix = ''
    encoder: Dict[str, object] = {}
    dropped: Dict[str, str] = {}
    for key, value in state.items():
        if not key.startswith(prefix):
            dropped[key] = f'outside {prefix!r} (decoder / head)'
            continue
        name = key[len(prefix):]
        if is_pretrain_only(name) and not keep_pretrain_only:
            dropped[key] = 'pretraining only'
            continue
        encoder[name] = value
    return encoder, dropped, prefix


def recorded_rpe(encoder: Mapping[str, object]) -> Optional[dict]:
    """The iRPE lookup (``index_mode``, ``ratio``) recorded in an encoder state dict; None without iRPE."""
    states = [decode_lookup(v) for k, v in encoder.items() if k.endswith('rpe.' + EXTRA_STATE_SUFFIX)]
    if not states:
        return None
    modes = {(s['index_mode'], s['ratio']) for s in states}
    if len(modes) > 1:
        raise ValueError(f'the checkpoint mixes iRPE lookups {sorted(modes, key=str)} across blocks')
    index_mode, ratio = modes.pop()
    return dict(index_mode=index_mode, ratio=ratio)


def _square_side(n: int) -> Optional[int]:
    side = math.isqrt(n)
    return side if side * side == n else None


def _target_grid(module: nn.Module, length: int) -> Tuple[Tuple[int, int], int]:
    """(grid, number of extra tokens) of the target's ``pos_embed`` of ``length`` positions."""
    grid = getattr(module, 'patch_resolution', None)
    if grid is not None:
        grid = (int(grid[0]), int(grid[1]))
        return grid, length - grid[0] * grid[1]
    for extra in (0, 1):
        side = _square_side(length - extra)
        if side:
            return (side, side), extra
    raise ValueError(f'cannot infer the patch grid of a pos_embed with {length} positions')


def adapt_pos_embed(pos_embed: torch.Tensor, module: nn.Module, target_shape: torch.Size,
                    mode: str = 'bicubic') -> torch.Tensor:
    """Resize a square-grid checkpoint ``pos_embed`` [1, (1 +) h*w, D] to the target's grid and layout.

    The checkpoint's cls position is kept when the target has one and dropped otherwise.
    """
    length = pos_embed.shape[1]
    # A pretraining grid is square; a cls position makes the length one more than a square.
    src_extra = 1 if _square_side(length) is None and _square_side(length - 1) else 0
    side = _square_side(length - src_extra)
    if side is None:
        raise ValueError(f'checkpoint pos_embed {list(pos_embed.shape)} is not a square grid (+ cls)')
    dst_grid, dst_extra = _target_grid(module, target_shape[1])
    if dst_extra not in (0, 1) or dst_extra > src_extra:
        raise ValueError(f'cannot map checkpoint pos_embed {list(pos_embed.shape)} to {list(target_shape)}')
    if src_extra and not dst_extra:
        pos_embed = pos_embed[:, 1:]
    resized = resize_pos_embed(pos_embed.float(), (side, side), dst_grid, mode=mode, num_extra_tokens=dst_extra)
    return resized.to(pos_embed.dtype)


def fresh_prefixes(module: nn.Module) -> Tuple[str, ...]:
    """Target key prefixes that are new by design and need no pretrained value.

    A backbone declares them with a ``pretrained_fresh_keys`` attribute. mmpretrain's ViT with global average
    pooling (``out_type='avg_featmap'``) normalises the pooled feature with a new ``ln2`` (MAE's fc_norm).
    """
    declared = getattr(module, 'pretrained_fresh_keys', None)
    if declared is not None:
        return tuple(declared)
    if getattr(module, 'out_type', None) == 'avg_featmap' and hasattr(module, 'ln2'):
        return ('ln2.', )
    return ()


def load_pretrained_encoder(module: nn.Module,
                            checkpoint: Union[str, Mapping],
                            prefix: str = 'backbone.',
                            logger: Optional[Union[MMLogger, str]] = None,
                            interpolate_mode: str = 'bicubic') -> EncoderLoadReport:
    """Load the encoder of a pretraining (or bare backbone) checkpoint into ``module`` and log a report.

    Args:
        module (nn.Module): the downstream backbone (``IRPEViT``, ``PlainViT``, mmpretrain's ViT ...).
        checkpoint (str | Mapping): a checkpoint path/URI or a loaded checkpoint dict.
        prefix (str): the encoder prefix in the checkpoint. Defaults to 'backbone.'. Checkpoints without
            any key under it are taken as bare backbones.
        logger (MMLogger | str, optional): where the report goes; the current mmengine logger by default.
        interpolate_mode (str): how ``pos_embed`` is resized. Defaults to 'bicubic'.

    Returns:
        EncoderLoadReport: what was loaded, dropped, resized and missing.

    Raises:
        ValueError: when no checkpoint key matches a backbone key; when the checkpoint has iRPE tables the
            backbone cannot take; when a tensor other than ``pos_embed`` has another shape; when the iRPE
            lookup recorded in the checkpoint differs from the backbone's (raised by ``IRPE``).
    """
    state, source = read_checkpoint(checkpoint)
    encoder, dropped, used_prefix = split_encoder_state(state, prefix, keep_pretrain_only=True)
    report = EncoderLoadReport(checkpoint=source, prefix=used_prefix, dropped=dropped,
                               rpe=recorded_rpe(encoder))
    target = module.state_dict()
    to_load: Dict[str, object] = {}
    mismatched = []
    for name, value in encoder.items():
        full = used_prefix + name
        if name not in target:
            # A pretraining encoder (MAEPlusViT) has a mask token and adversaries and keeps them.
            dropped[full] = 'pretraining only' if is_pretrain_only(name) else 'not in this backbone'
            continue
        if isinstance(value, torch.Tensor) and value.shape != target[name].shape:
            if name.rsplit('.', 1)[-1] == 'pos_embed':
                resized = adapt_pos_embed(value, module, target[name].shape, interpolate_mode)
                report.resized[name] = (tuple(value.shape), tuple(resized.shape))
                value = resized
            else:
                mismatched.append(f'{name}: checkpoint {list(value.shape)} vs backbone {list(target[name].shape)}')
                continue
        to_load[name] = value
    if mismatched:
        raise ValueError(f'{source}: shape mismatch (is the backbone arch the pretraining one?): '
                         + '; '.join(mismatched))
    lost_tables = [k for k, r in dropped.items() if r == 'not in this backbone' and k.endswith('lookup_table')]
    if lost_tables:
        raise ValueError(f'{source} has iRPE tables ({len(lost_tables)}, lookup {report.rpe}) but the backbone has '
                         f'none: build it with rpe=dict(ratio=..., index_mode=...) as in pretraining')
    if not any(k for k in to_load if not k.endswith(EXTRA_STATE_SUFFIX)):
        raise ValueError(f'{source}: no checkpoint key matches a key of {type(module).__name__} (prefix '
                         f'{prefix!r}; checkpoint keys e.g. {list(state)[:5]}; backbone keys e.g. '
                         f'{list(target)[:5]})')
    module.load_state_dict(to_load, strict=False)  # IRPE.set_extra_state refuses another index mode
    fresh = fresh_prefixes(module)
    report.loaded = [k for k in target if k in to_load and not k.endswith(EXTRA_STATE_SUFFIX)]
    for key in target:
        if key in to_load or key.endswith(EXTRA_STATE_SUFFIX):
            continue
        (report.fresh if key.startswith(fresh) and fresh else report.missing).append(key)
    print_log(report.summary(), logger=logger or MMLogger.get_current_instance(),
              level=30 if report.missing else 20)
    return report
