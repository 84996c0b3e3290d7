"""Mean attention distance of every encoder block, in patches, for one or more pretrained encoders.

    python tools/analysis_tools/attention_distance.py \
        --model MAE+ configs/mae_plus/maeplus_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py maeplus.pth \
        --model AdPE configs/adpe/vitb_rpe_coord_1600e.py adpe.pth \
        --images data/imagenet/val --num-images 1024 --out-dir work_dirs/attention_distance

Prints a per-block table (mean over heads), writes ``attention_distance.json`` (per block and head) and
``attention_distance.png`` (mean over heads as a line, each head as a dot). Each model sees the images at its
pretraining input size (MAE 224 px = 14x14 patches, MAE+ 112 px = 7x7), so distances are in patches of its
own grid: compare models with the same grid, or normalise by the grid side yourself. Definition: see
``adpe_mm/analysis/attention_distance.py`` (clean unmasked forward, cls attention left out).
"""
import argparse
import json
import os
import os.path as osp

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from adpe_mm.analysis import attention_distance_per_layer, list_images, load_images, load_pretrainer  # noqa: E402
from adpe_mm.analysis.attention import patch_grid  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Mean attention distance per encoder block (in patches)')
    parser.add_argument('--model', nargs=3, action='append', required=True, metavar=('LABEL', 'CONFIG', 'CKPT'),
                        help='a model to measure (repeat to compare)')
    parser.add_argument('--images', nargs='+', required=True, help='image files or folders')
    parser.add_argument('--num-images', type=int, default=1024, help='at most this many images')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out-dir', default='.', help='where the json and the PNG go')
    return parser.parse_args(argv)


def measure(config: str, checkpoint: str, paths, batch_size: int, device: str) -> dict:
    """Per-block, per-head distances of one model over ``paths``."""
    model = load_pretrainer(config, checkpoint, device)
    total, grid = None, None
    for start in range(0, len(paths), batch_size):
        images = load_images(model, paths[start:start + batch_size])
        grid = patch_grid(model.backbone, images)
        dist = attention_distance_per_layer(model.backbone, images, batch_size) * images.shape[0]
        total = dist if total is None else total + dist
    per_head = (total / len(paths)).cpu()  # [layers, heads]
    return dict(config=config, checkpoint=checkpoint, grid=list(grid), num_images=len(paths),
                per_head=per_head.tolist(), mean=per_head.mean(dim=1).tolist())


def plot(results: dict, out: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, res in results.items():
        layers = range(len(res['mean']))
        line, = ax.plot(layers, res['mean'], marker='o', label=f'{label} ({res["grid"][0]}x{res["grid"][1]})')
        for i, heads in enumerate(res['per_head']):
            ax.scatter([i] * len(heads), heads, s=8, color=line.get_color(), alpha=.4)
    ax.set_xticks(range(max(len(res['mean']) for res in results.values())))
    ax.set_xlabel('encoder block')
    ax.set_ylabel('mean attention distance (patches)')
    ax.set_title('mean attention distance (line: mean over heads; dots: heads)', fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    args = parse_args(argv)
    paths = list_images(args.images, args.num_images)
    results = {label: measure(config, ckpt, paths, args.batch_size, args.device)
               for label, config, ckpt in args.model}
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'attention_distance.json'), 'w') as f:
        json.dump(results, f, indent=1)
    plot(results, osp.join(args.out_dir, 'attention_distance.png'))
    labels = list(results)
    print(f'mean attention distance in patches over {len(paths)} images (mean over heads)')
    print('| block | ' + ' | '.join(labels) + ' |')
    print('|---|' + '---|' * len(labels))
    for i in range(max(len(r['mean']) for r in results.values())):
        cells = [f'{results[lab]["mean"][i]:.3f}' if i < len(results[lab]['mean']) else '' for lab in labels]
        print(f'| {i} | ' + ' | '.join(cells) + ' |')
    print(f'written to {args.out_dir}/attention_distance.{{json,png}}')
    return results


if __name__ == '__main__':
    main()
