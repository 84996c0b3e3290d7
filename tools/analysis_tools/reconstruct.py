"""Masked reconstructions of your own images by an MAE, MAE+, AdPE or FGSM pretraining checkpoint.

    python tools/analysis_tools/reconstruct.py CONFIG CHECKPOINT --images my_photos/ --out-dir recon/

Each image is resized (shorter side) and centre-cropped to the model's pretraining input (MAE 224 px, MAE+
112 px crops), masked with the model's own mask ratio (``--seed`` fixes the masks) and reconstructed. One row
per image: original | masked input | reconstruction | reconstruction with the visible patches pasted back.

- ``reconstruction.png``: predictions brought back to pixels. A model trained on per-patch normalised pixels
  (``norm_pix=True``) predicts each patch up to its mean and variance; as in MAE's demo these are taken from
  the true patch, so this view borrows the first two moments of every masked patch from the original.
- ``reconstruction_normpix.png`` (norm_pix models only): the raw normalised-pixel prediction, rescaled per
  image to [0, 1] for display, which shows what the model itself predicts.

``--adversarial`` applies the AdPE adversaries (default off: what the model has learned).
"""
import argparse
import os
import os.path as osp

import mmcv

from adpe_mm.analysis import list_images, load_images, load_pretrainer, normalisation, reconstruct
from adpe_mm.visualization import reconstruction_panel


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Reconstruct masked images with a MIM checkpoint')
    parser.add_argument('config', help='the pretraining config of the checkpoint')
    parser.add_argument('checkpoint', help='a runner checkpoint of that config')
    parser.add_argument('--images', nargs='+', required=True, help='image files or folders')
    parser.add_argument('--num-images', type=int, default=8, help='at most this many images')
    parser.add_argument('--seed', type=int, default=0, help='seed of the masks')
    parser.add_argument('--adversarial', action='store_true', help='apply the AdPE adversaries')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out-dir', default='.', help='where the PNGs go')
    return parser.parse_args(argv)


def main(argv=None) -> list:
    args = parse_args(argv)
    model = load_pretrainer(args.config, args.checkpoint, args.device)
    images = load_images(model, list_images(args.images, args.num_images))
    pred, mask = reconstruct(model, images, seed=args.seed, adversarial=args.adversarial)
    mean, std = normalisation(model)
    norm_pix = bool(model.head.norm_pix)
    views = [('reconstruction.png', True)] + ([('reconstruction_normpix.png', False)] if norm_pix else [])
    os.makedirs(args.out_dir, exist_ok=True)
    written = []
    for name, denormalise in views:
        panel = reconstruction_panel(pred, mask, images, model.head.patch_size, mean, std, norm_pix=norm_pix,
                                     denormalise=denormalise)
        path = osp.join(args.out_dir, name)
        mmcv.imwrite(panel[..., ::-1], path)  # RGB -> BGR for cv2
        written.append(path)
    print('written: ' + ', '.join(written))
    return written


if __name__ == '__main__':
    main()
