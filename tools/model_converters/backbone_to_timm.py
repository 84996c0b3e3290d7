"""Write an APE encoder (pretraining or backbone checkpoint) in timm's VisionTransformer format.

    python tools/model_converters/backbone_to_timm.py CKPT.pth VIT_TIMM.pth [--img-size 224]

Keys follow timm's ``vision_transformer.py``: ``cls_token``, ``pos_embed``, ``patch_embed.proj``,
``blocks.{i}.norm1|attn.qkv|attn.proj|norm2|mlp.fc1|mlp.fc2``, ``norm`` (the final LN), and for a
fine-tuned global-pool classifier ``fc_norm`` and ``head``. The output is a flat dict of plain tensors for
``timm.create_model('vit_base_patch16_224', num_classes=0, img_size=...)`` with ``load_state_dict``
(``--img-size`` resizes the APE bicubically first; without it the pretraining grid is kept, e.g. 112 px).
iRPE encoders are refused: timm's ViT has no iRPE, so the tables would be lost.
"""
import argparse
import math
import os
import os.path as osp
import re
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from adpe_mm.models.backbones.pretrained import split_encoder_state  # noqa: E402
from adpe_mm.utils.checkpoint_file import plain_state_dict, read_checkpoint  # noqa: E402
from mmpretrain.models.utils import resize_pos_embed  # noqa: E402

# mmpretrain / adpe_mm name (regex on the key without prefix) -> timm name.
RENAMES = [
    (r'^patch_embed\.projection\.', 'patch_embed.proj.'),
    (r'^layers\.(\d+)\.ln1\.', r'blocks.\1.norm1.'),
    (r'^layers\.(\d+)\.attn\.qkv\.', r'blocks.\1.attn.qkv.'),
    (r'^layers\.(\d+)\.attn\.proj\.', r'blocks.\1.attn.proj.'),
    (r'^layers\.(\d+)\.ln2\.', r'blocks.\1.norm2.'),
    (r'^layers\.(\d+)\.ffn\.layers\.0\.0\.', r'blocks.\1.mlp.fc1.'),
    (r'^layers\.(\d+)\.ffn\.layers\.1\.', r'blocks.\1.mlp.fc2.'),
    (r'^ln1\.', 'norm.'),
    (r'^ln2\.', 'fc_norm.'),
    (r'^(cls_token|pos_embed)$', r'\1'),
]


def timm_name(key: str) -> str:
    for pattern, repl in RENAMES:
        if re.match(pattern, key):
            return re.sub(pattern, repl, key)
    raise KeyError(f'{key} has no timm VisionTransformer counterpart')


def convert(src, img_size: int = None, patch_size: int = 16) -> dict:
    """timm VisionTransformer state dict of the APE encoder in ``src`` (and its head if it has one)."""
    state, source = read_checkpoint(src)
    encoder, _, _ = split_encoder_state(state, 'backbone.')
    tables = [k for k in encoder if 'rpe.' in k]
    if tables:
        raise ValueError(f'{source} is an iRPE encoder ({len(tables)} iRPE entries): timm\'s VisionTransformer '
                         'has no iRPE; release it as a backbone checkpoint (pretrain_to_backbone.py) instead')
    out = {timm_name(k): v for k, v in encoder.items()}
    for ours, theirs in (('head.fc.weight', 'head.weight'), ('head.fc.bias', 'head.bias')):
        if ours in state:
            out[theirs] = state[ours]
    if img_size is not None:
        pos = out['pos_embed']
        side = math.isqrt(pos.shape[1] - 1)
        new = img_size // patch_size
        out['pos_embed'] = resize_pos_embed(pos.float(), (side, side), (new, new), 'bicubic', 1).to(pos.dtype)
    return plain_state_dict(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='pretraining, backbone or fine-tuned classifier checkpoint (APE)')
    parser.add_argument('dst', help='output timm state dict')
    parser.add_argument('--img-size', type=int, help='resize the APE to this input size (pixels)')
    parser.add_argument('--patch-size', type=int, default=16)
    args = parser.parse_args(argv)
    out = convert(args.src, args.img_size, args.patch_size)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(out, args.dst)
    depth = len({k.split('.')[1] for k in out if k.startswith('blocks.')})
    print(f'{args.dst}: timm ViT state dict, {depth} blocks, pos_embed {list(out["pos_embed"].shape)}')


if __name__ == '__main__':
    from adpe_mm.utils import CheckpointFileError
    try:
        main()
    except (CheckpointFileError, FileNotFoundError) as err:  # a bad input file: one line, no traceback
        raise SystemExit(f'tools/model_converters/backbone_to_timm.py: error: {err}')
