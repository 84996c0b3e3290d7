"""Adversary-strength probe: the loss gain of a fresh PGD adversary vs eps, per mode, on a frozen model.

    python tools/analysis_tools/adversary_probe.py \
        configs/adpe/tiny/adpe-rpe-coord_vit-tiny-p16_4x112-1xb8-300iter_embedded.py \
        work_dirs/rpe_coord/iter_300.pth --out-dir work_dirs/probe

Without a checkpoint the config's fresh initialisation is probed (``--random-tables`` gives its iRPE tables
random values, since zero tables give RPE adversaries nothing to act on). Images: the embedded photos by
default, centre squares at the crop size. Budgets: Table A.2's per mode unless ``--budget NAME=EPS,EPS``
(e.g. ``--budget rpe-coord-linf=5,10,15,20,25``), attacked in increasing order, each ball also from the
best adversary of the previous one (the gain is the best loss found in the ball).

Writes ``probe.json`` and ``probe.png``: the loss gain against eps; for RPE coordinate mode the saturated
fraction of pairs and the smallest gradient norm on the path; for every coordinate attack the loss at a
uniform shift of every block (``--scan-points`` shifts up to the largest eps), which shows where the loss
peaks. Also the model's reliance on the APE and the iRPE tables and, for a checkpoint trained with an
adversary, the loss at that trained adversary; see ``adpe_mm/analysis/adversary_probe.py`` for what is
measured.
"""
import argparse
import json
import os
import os.path as osp

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from adpe_mm.analysis import list_images, load_images, load_pretrainer  # noqa: E402
from adpe_mm.analysis.adversary_probe import TABLE_A2_BUDGETS, probe  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Fresh-PGD adversary strength of a frozen MAE+/AdPE model')
    parser.add_argument('config', help='a pretraining config')
    parser.add_argument('checkpoint', nargs='?', help='a runner checkpoint of it (default: fresh initialisation)')
    parser.add_argument('--images', nargs='+', default=['data/embedded/train'], help='image files or folders')
    parser.add_argument('--num-images', type=int, default=8)
    parser.add_argument('--budget', action='append', default=[], metavar='NAME=EPS,EPS',
                        help="an attack and its eps list, e.g. rpe-coord-linf=10,15,20 (repeatable; default: "
                             "Table A.2's budgets)")
    parser.add_argument('--steps', type=int, default=10, help='PGD steps')
    parser.add_argument('--step-size', type=float, default=0.25, help='PGD step as a fraction of eps')
    parser.add_argument('--seed', type=int, default=0, help='seed of the masks (and of --random-tables)')
    parser.add_argument('--scan-points', type=int, default=17,
                        help='coordinate attacks: the loss at this many uniform shifts up to the largest eps, '
                             'along an axis and the diagonal (0: no scan)')
    parser.add_argument('--random-tables', action='store_true', help='N(0, 0.5) iRPE tables (fresh models)')
    parser.add_argument('--out-dir', default='.', help='where probe.json and probe.png go')
    args = parser.parse_args(argv)
    budgets = {}
    for item in args.budget:
        name, _, values = item.partition('=')
        try:
            budgets[name] = [float(v) for v in values.split(',')]
        except ValueError:
            parser.error(f'--budget {item!r}: expected NAME=EPS,EPS,...')
    args.budgets = budgets or dict(TABLE_A2_BUDGETS)
    return args


def plot(result: dict, path: str) -> None:
    fig, axes = plt.subplots(1, 4, figsize=(18, 3.6))
    for name, runs in result['attacks'].items():
        eps = [r['eps'] for r in runs]
        line, = axes[0].plot(eps, [r['gain'] for r in runs], 'o-', label=name)
        axes[0].plot(eps, [r['gain_from_zero'] for r in runs], ':', color=line.get_color())
        if runs[0]['saturation'] is not None:
            axes[1].plot(eps, [max(r['saturation']) for r in runs], 'o-', label=name)
            axes[2].plot(eps, [min(r['grad_norms']) for r in runs], 'o-', label=name)
    for name, scan in result.get('scans', {}).items():
        clean = result['attacks'][name][0]['clean']
        for (direction, losses), style in zip(scan['losses'].items(), ('-', '--')):
            axes[3].plot(scan['shifts'], [v - clean for v in losses], style, label=f'{name} {direction}')
    titles = ('loss gain of a fresh PGD adversary (dotted: the run from zero alone)',
              'RPE coord: most saturated pairs on the path', 'RPE coord: smallest gradient norm on the path',
              'coord: loss - clean at a uniform shift of every block')
    for ax, title in zip(axes, titles):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel('eps')
        if ax.lines:
            ax.legend(fontsize=7)
    axes[0].set_yscale('symlog', linthresh=1e-3)  # gains span 1e-4 (RPE coord) to 1 (APE embed)
    axes[2].set_yscale('symlog', linthresh=1e-8)
    axes[3].set_xlabel('shift (patches, in the ball\'s norm)')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    args = parse_args(argv)
    import logging
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel(logging.WARNING)
    from mmengine.runner import CheckpointLoader
    cfg = Config.fromfile(args.config)
    model_cfg = cfg.model.to_dict()
    if 'data_preprocessor' not in model_cfg and cfg.get('data_preprocessor') is not None:
        model_cfg['data_preprocessor'] = cfg.data_preprocessor.to_dict()
    fresh = load_pretrainer(args.config, None)  # the preprocessor and the crop size
    crops = load_images(fresh, list_images(args.images, args.num_images))
    state = None
    if args.checkpoint:
        state = CheckpointLoader.load_checkpoint(args.checkpoint, map_location='cpu')
        state = state.get('state_dict', state)
    elif args.random_tables:
        g = torch.Generator().manual_seed(args.seed)
        state = {k: torch.randn(v.shape, generator=g) * 0.5 if k.endswith('lookup_table') else v
                 for k, v in fresh.state_dict().items()}
    result = probe(model_cfg, state, crops, args.budgets, args.steps, args.step_size, args.seed,
                   args.scan_points)
    result['settings'].update(config=args.config, checkpoint=args.checkpoint, random_tables=args.random_tables)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'probe.json'), 'w') as f:
        json.dump(result, f, indent=1)
    plot(result, osp.join(args.out_dir, 'probe.png'))
    for name, runs in result['attacks'].items():
        print(f'{name}: ' + '  '.join(f"eps {r['eps']:g}: gain {r['gain']:.4f}" for r in runs))
    for name, scan in result['scans'].items():
        clean = result['attacks'][name][0]['clean']
        print(f'{name} uniform shift: ' + '  '.join(
            f'{d} peak {max(ls) - clean:.4f} at {scan["shifts"][ls.index(max(ls))]:g}, '
            f'{ls[-1] - clean:.4f} at {scan["shifts"][-1]:g}' for d, ls in scan['losses'].items()))
    for name, reason in result['skipped'].items():
        print(f'{name}: skipped ({reason})')
    rel = result['reliance']
    print(f"reliance: clean {rel['clean']:.4f}, without the APE {rel['without_ape']:.4f}"
          + (f", without the iRPE tables {rel['without_rpe']:.4f} (table l2 norms "
             f"{min(rel['rpe_table_norms'].values()):.2f}-{max(rel['rpe_table_norms'].values()):.2f})"
             if 'without_rpe' in rel else ''))
    if result['own'] is not None:
        own = result['own']
        print(f"own trained adversary: loss there - clean {own['trained_gain']:+.4f}, PGD from it: gain "
              f"{own['gain']:.4f}")
    print(f"probe written to {osp.join(args.out_dir, 'probe.json')} and probe.png")
    return result


if __name__ == '__main__':
    main()
