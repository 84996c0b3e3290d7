"""Turn a MAE+/AdPE pretraining checkpoint into a clean backbone checkpoint of plain tensors.

    python tools/model_converters/pretrain_to_backbone.py PRETRAIN.pth BACKBONE.pth [--no-prefix]

Keeps the encoder (``backbone.*``): patch embedding, cls token, the 7x7 APE (downstream loaders resize it),
every block with its iRPE table and recorded lookup (``index_mode``/``ratio`` extra state), the final LN.
Drops the decoder (``neck.*``), the mask token and every adversary (``adv_*``), the optimizer, the message
hub and the config. The result loads with ``torch.load(weights_only=True)`` without importing adpe_mm, and
every downstream config takes it as ``init_cfg.checkpoint`` unchanged (keys keep the ``backbone.`` prefix
unless --no-prefix).
"""
import argparse
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from adpe_mm.models.backbones.pretrained import recorded_rpe, split_encoder_state  # noqa: E402
from adpe_mm.utils.checkpoint_file import plain_state_dict, read_checkpoint  # noqa: E402


def convert(src, prefix: str = 'backbone.', keep_prefix: bool = True) -> dict:
    """The clean backbone checkpoint ``{'state_dict': ..., 'meta': ...}`` of pretraining checkpoint ``src``."""
    state, source = read_checkpoint(src)
    encoder, dropped, used_prefix = split_encoder_state(state, prefix)
    if not encoder:
        raise ValueError(f'{source} has no encoder key under {prefix!r}')
    out_prefix = used_prefix if keep_prefix else ''
    meta = dict(source=osp.basename(source), prefix=out_prefix, rpe=recorded_rpe(encoder),
                dropped=sorted(dropped))
    return dict(state_dict=plain_state_dict({out_prefix + k: v for k, v in encoder.items()}), meta=meta)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='pretraining checkpoint (tools/train.py output)')
    parser.add_argument('dst', help='output backbone checkpoint')
    parser.add_argument('--prefix', default='backbone.', help='encoder prefix in the source')
    parser.add_argument('--no-prefix', action='store_true', help='write bare backbone keys (no prefix)')
    args = parser.parse_args(argv)
    ckpt = convert(args.src, args.prefix, keep_prefix=not args.no_prefix)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(ckpt, args.dst)
    meta = ckpt['meta']
    print(f'{args.dst}: {len(ckpt["state_dict"])} encoder entries, iRPE lookup {meta["rpe"]}, '
          f'{len(meta["dropped"])} keys dropped (decoder, mask token, adversaries)')


if __name__ == '__main__':
    from adpe_mm.utils import CheckpointFileError
    try:
        main()
    except (CheckpointFileError, FileNotFoundError) as err:  # a bad input file: one line, no traceback
        raise SystemExit(f'tools/model_converters/pretrain_to_backbone.py: error: {err}')
