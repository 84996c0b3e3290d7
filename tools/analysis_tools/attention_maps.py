"""Attention maps of an encoder block at chosen query positions, MAE / MAE+ / AdPE side by side (App. D).

    python tools/analysis_tools/attention_maps.py \
        --model MAE   configs/mae/mae_vit-base-p16_8xb128-accum4-amp-coslr-1600e_in1k.py   mae.pth \
        --model AdPE  configs/adpe/vitb_rpe_coord_1600e.py                                 adpe.pth \
        --images demo/dog.jpg --average-over data/imagenet/val --num-average 1024 \
        --points 0.25,0.25 0.5,0.5 0.75,0.6 --out attention_maps.png

One PNG, models in consecutive rows: for every single image one row per model (the image with the query
patches marked, then the attention of each query overlaid on it), then with ``--average-over`` one row per
model of the maps averaged over N images (Fig. A.2).
Query points are (y, x) fractions of the image, so they name the same place on MAE's 14x14 grid (224 px)
and MAE+'s 7x7 grid (112 px crops). The maps are the clean unmasked forward (all tokens visible, no
adversary), averaged over heads unless ``--head`` is given; they show the raw weights on the patch keys.
"""
import argparse
from typing import List, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from adpe_mm.analysis import (attention_weights, list_images, load_images, load_pretrainer,  # noqa: E402
                              normalisation, query_maps, query_patch)
from adpe_mm.analysis.attention import num_extra_tokens, patch_grid  # noqa: E402
from adpe_mm.analysis.pretrained import input_size  # noqa: E402


def parse_point(text: str) -> Tuple[float, float]:
    try:
        y, x = (float(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'a query point is "y,x" (fractions of the image), got {text!r}')
    if not (0 <= y <= 1 and 0 <= x <= 1):
        raise argparse.ArgumentTypeError(f'query point {text!r} must lie in [0, 1] x [0, 1]')
    return y, x


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Draw attention maps of MAE / MAE+ / AdPE encoders')
    parser.add_argument('--model', nargs=3, action='append', required=True, metavar=('LABEL', 'CONFIG', 'CKPT'),
                        help='a model to draw; repeat it to compare models (MAE, MAE+, AdPE) in one figure')
    parser.add_argument('--images', nargs='+', default=[], help='single images (files or folders)')
    parser.add_argument('--average-over', nargs='+', default=[],
                        help='images (files or folders) whose maps are averaged (paper: 1024 images)')
    parser.add_argument('--num-average', type=int, default=1024, help='at most this many images to average')
    parser.add_argument('--points', nargs='+', type=parse_point, default=[(0.25, 0.25), (0.5, 0.5), (0.75, 0.75)],
                        help='query points "y,x" as fractions of the image')
    parser.add_argument('--layer', type=int, default=0, help='encoder block (default 0, the first)')
    parser.add_argument('--head', type=int, default=None, help='one head instead of the mean over heads')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', default='attention_maps.png', help='output PNG')
    args = parser.parse_args(argv)
    if not args.images and not args.average_over:
        parser.error('give --images and/or --average-over')
    return args


def to_display(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Normalised RGB [B, 3, H, W] -> displayable [B, H, W, 3] in [0, 1]."""
    mean_t = torch.tensor(mean).view(1, 3, 1, 1)
    std_t = torch.tensor(std).view(1, 3, 1, 1)
    return ((images.cpu() * std_t + mean_t) / 255.).clamp(0, 1).permute(0, 2, 3, 1).numpy()


@torch.no_grad()
def model_maps(model, paths: List[str], points, layer: int, head, batch_size: int):
    """(display images [B, H, W, 3], maps [B, Q, h, w], query patches, grid) of ``paths``."""
    mean, std = normalisation(model)
    shown, maps = [], []
    for start in range(0, len(paths), batch_size):
        images = load_images(model, paths[start:start + batch_size])
        hw = patch_grid(model.backbone, images)
        queries = [query_patch(p, hw) for p in points]
        attn = attention_weights(model.backbone, images, [layer])
        maps.append(query_maps(attn[layer % len(model.backbone.layers)], hw, queries,
                               num_extra_tokens(model.backbone), head).cpu())
        shown.append(to_display(images, mean, std))
    return np.concatenate(shown), torch.cat(maps).numpy(), queries, hw


@torch.no_grad()
def mean_maps(model, paths: List[str], points, layer: int, head, batch_size: int):
    """(maps [Q, h, w] averaged over ``paths``, query patches, grid), one batch in memory at a time."""
    total, queries, hw = 0., None, None
    for start in range(0, len(paths), batch_size):
        _, maps, queries, hw = model_maps(model, paths[start:start + batch_size], points, layer, head, batch_size)
        total = total + maps.sum(axis=0)
    return total / len(paths), queries, hw


def mark_query(ax, query: Tuple[int, int], hw: Tuple[int, int], size: int, colour: str = 'cyan') -> None:
    """Outline query patch (row, col) of an (h, w) grid drawn over ``size`` x ``size`` pixels."""
    ph, pw = size / hw[0], size / hw[1]
    ax.add_patch(plt.Rectangle((query[1] * pw - .5, query[0] * ph - .5), pw, ph, fill=False, ec=colour, lw=1.5))


def draw(rows: List[dict], points, out: str, layer: int, head) -> None:
    cols = 1 + len(points)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.2 * cols, 2.3 * len(rows)), squeeze=False)
    for ax_row, row in zip(axes, rows):
        size = row['size']
        first = ax_row[0]
        if row['image'] is not None:
            first.imshow(row['image'], extent=(-.5, size - .5, size - .5, -.5))
        else:
            first.imshow(np.full((size, size, 3), .9), extent=(-.5, size - .5, size - .5, -.5))
        for q in row['queries']:
            mark_query(first, q, row['hw'], size)
        first.set_ylabel(row['label'], fontsize=9)
        first.set_title(row['title'], fontsize=8)
        for j, ax in enumerate(ax_row[1:]):
            if row['image'] is not None:
                ax.imshow(row['image'], extent=(-.5, size - .5, size - .5, -.5))
                ax.imshow(row['maps'][j], cmap='inferno', alpha=.65, extent=(-.5, size - .5, size - .5, -.5),
                          interpolation='nearest')
            else:
                ax.imshow(row['maps'][j], cmap='inferno', extent=(-.5, size - .5, size - .5, -.5),
                          interpolation='nearest')
            mark_query(ax, row['queries'][j], row['hw'], size)
            if ax_row is axes[0]:
                ax.set_title(f'query (y, x) = {points[j][0]:.2f}, {points[j][1]:.2f}', fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    heads = 'mean over heads' if head is None else f'head {head}'
    fig.suptitle(f'encoder block {layer} attention ({heads}); unmasked forward, no adversary', fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv=None) -> str:
    args = parse_args(argv)
    singles = list_images(args.images) if args.images else []
    averaged = list_images(args.average_over, args.num_average) if args.average_over else []
    if averaged and len(averaged) < args.num_average:
        print(f'averaging over {len(averaged)} images (fewer than --num-average {args.num_average})')
    single_rows, mean_rows = [], []  # per model; drawn image by image, models next to each other
    for label, config, checkpoint in args.model:
        model = load_pretrainer(config, checkpoint, args.device)
        if singles:
            shown, maps, queries, hw = model_maps(model, singles, args.points, args.layer, args.head,
                                                  args.batch_size)
            single_rows.append([
                dict(label=label, title=path.split('/')[-1][:28], image=image, maps=image_maps, queries=queries,
                     hw=hw, size=image.shape[0]) for path, image, image_maps in zip(singles, shown, maps)
            ])
        if averaged:
            maps, queries, hw = mean_maps(model, averaged, args.points, args.layer, args.head, args.batch_size)
            mean_rows.append(dict(label=label, title=f'mean of {len(averaged)} images', image=None, maps=maps,
                                  queries=queries, hw=hw, size=input_size(model)))
        del model
    rows = [per_model[i] for i in range(len(singles)) for per_model in single_rows] + mean_rows
    draw(rows, args.points, args.out, args.layer, args.head)
    print(f'attention maps written to {args.out}')
    return args.out


if __name__ == '__main__':
    main()
