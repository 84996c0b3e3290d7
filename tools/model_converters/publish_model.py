"""Release a checkpoint: keep the weights, drop the training state, name it NAME_YYYYMMDD-HASH8.pth.

    python tools/model_converters/publish_model.py IN.pth OUT_DIR/NAME [--date YYYYMMDD]

``state_dict`` (or a flat state dict) is kept as plain tensors, plus a small ``meta`` (source file name,
mmengine version, epoch/iter, iRPE lookup of a backbone checkpoint); optimizer, schedulers, message hub and
config are dropped. HASH8 is the first 8 hex digits of the SHA-256 of the written file, so the name pins the
content (mmpretrain/mmdet convention). The result loads with ``torch.load(weights_only=True)``.
"""
import argparse
import datetime
import hashlib
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from adpe_mm.utils.checkpoint_file import plain_state_dict  # noqa: E402

META_KEYS = ('mmengine_version', 'epoch', 'iter', 'rpe', 'prefix', 'source')


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def publish(src: str, out_stem: str, date: str = None) -> str:
    """Write the release file of ``src`` next to ``out_stem`` and return its final path."""
    import adpe_mm  # noqa: F401  allow-lists what mmengine runner checkpoints pickle
    from adpe_mm.utils import load_checkpoint_file
    ckpt = load_checkpoint_file(src)  # names an empty, truncated or foreign file
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not state:
        raise ValueError(f'{src} holds no state dict')
    meta = {k: v for k, v in (ckpt.get('meta') or {}).items() if k in META_KEYS and isinstance(
        v, (str, int, float, dict, type(None)))} if 'state_dict' in ckpt else {}
    meta.setdefault('source', osp.basename(src))
    date = date or datetime.date.today().strftime('%Y%m%d')
    if len(date) != 8 or not date.isdigit():
        raise ValueError(f'--date must be YYYYMMDD, got {date!r}')
    stem = out_stem[:-4] if out_stem.endswith('.pth') else out_stem
    os.makedirs(osp.dirname(osp.abspath(stem)), exist_ok=True)
    tmp = f'{stem}.tmp.pth'
    torch.save(dict(state_dict=plain_state_dict(state), meta=meta), tmp)
    final = f'{stem}_{date}-{sha256(tmp)[:8]}.pth'
    os.replace(tmp, final)
    return final


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='checkpoint to release')
    parser.add_argument('out', help='output path without date and hash, e.g. releases/adpe_vit-b-p16')
    parser.add_argument('--date', help='release date YYYYMMDD (default: today)')
    args = parser.parse_args(argv)
    print(publish(args.src, args.out, args.date))


if __name__ == '__main__':
    from adpe_mm.utils import CheckpointFileError
    try:
        main()
    except (CheckpointFileError, FileNotFoundError) as err:  # a bad input file: one line, no traceback
        raise SystemExit(f'tools/model_converters/publish_model.py: error: {err}')
