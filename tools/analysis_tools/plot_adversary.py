"""Adversary diagnostics from training logs: adversary norm and clean-vs-adversarial loss gap over training.

    python tools/analysis_tools/plot_adversary.py work_dirs/adpe_run1 work_dirs/adpe_run2 \
        --labels eps3 eps20 --out adversary.png

Each argument is a work dir (all its ``<timestamp>/vis_data/scalars.json``, so resumed runs are joined) or
one json log. Panels: ``adv_norm`` (``AdversaryHook``: the largest adversary size, each in its own ball's
norm), ``adv_gap`` (loss with the adversary minus loss without it, same weights and masks; logged by MAE+ with
``log_adv_gap=True`` and always by the FGSM baseline) and the training ``loss``. ``--smooth N`` draws a
running mean over N logged points on top of the raw curve.
"""
import argparse
import os.path as osp

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from adpe_mm.analysis import read_scalars  # noqa: E402

PANELS = (('adv_norm', 'adversary norm (adv_norm)', 'AdversaryHook'),
          ('adv_gap', 'adversarial - clean loss (adv_gap)', 'model.log_adv_gap=True'),
          ('loss', 'training loss', None))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Plot adversary norm and loss gap from mmengine json logs')
    parser.add_argument('logs', nargs='+', help='work dirs or json log files')
    parser.add_argument('--labels', nargs='+', help='one label per log (default: the folder names)')
    parser.add_argument('--smooth', type=int, default=1, help='running mean over this many logged points')
    parser.add_argument('--out', default='adversary.png', help='output PNG')
    args = parser.parse_args(argv)
    if args.labels and len(args.labels) != len(args.logs):
        parser.error(f'{len(args.labels)} labels for {len(args.logs)} logs')
    return args


def running_mean(values, n: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if n <= 1 or len(values) < n:
        return values
    return np.convolve(values, np.ones(n) / n, mode='valid')


def main(argv=None) -> str:
    args = parse_args(argv)
    labels = args.labels or [osp.basename(osp.normpath(p)) for p in args.logs]
    runs = {label: read_scalars(path) for label, path in zip(labels, args.logs)}
    if not any(key in scalars for scalars in runs.values() for key in ('adv_norm', 'adv_gap')):
        raise SystemExit(f'none of {args.logs} logs adv_norm or adv_gap: train with custom_hooks '
                         "[dict(type='AdversaryHook')] and model.log_adv_gap=True")
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.5 * len(PANELS), 3.4))
    for ax, (key, title, source) in zip(axes, PANELS):
        drawn = False
        for label, scalars in runs.items():
            if key not in scalars:
                continue
            steps, values = scalars[key]
            line, = ax.plot(steps, values, lw=.8, alpha=.4 if args.smooth > 1 else 1., label=label)
            if args.smooth > 1 and len(values) >= args.smooth:
                ax.plot(steps[args.smooth - 1:], running_mean(values, args.smooth), color=line.get_color(), lw=1.5)
            drawn = True
        if key == 'adv_gap' and drawn:
            ax.axhline(0, color='grey', lw=.6)
        if drawn:
            ax.legend(fontsize=7)
        else:
            ax.text(.5, .5, f'not logged\n(needs {source})', ha='center', va='center', transform=ax.transAxes)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel('iteration')
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    plt.close(fig)
    print(f'adversary diagnostics written to {args.out}')
    return args.out


if __name__ == '__main__':
    main()
