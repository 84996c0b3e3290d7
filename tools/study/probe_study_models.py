"""The adversary-strength probe on the Fashion-MNIST study's pretrained models: loss gain against eps.

``positional_attack.py`` attacks each pretrained model at the one budget per mode the study trains with.
This tool runs the library's probe (``adpe_mm.analysis.adversary_probe.probe``, the one behind
``tools/analysis_tools/adversary_probe.py``) on the same models over a range of eps per mode: the loss gain
of a fresh PGD adversary (best loss found in each ball, each ball also attacked from the smaller ball's best
adversary), the saturated fraction and gradient norm on RPE-coordinate paths, the loss at uniform shifts of
every block (where the coordinate loss peaks), and what the model relies on (APE and iRPE tables removed,
table norms). These models were trained for 780 steps on 10,000 images, so their iRPE tables carry more than
the 300-iteration tiny models' do.

Inputs: the first ``--images`` test images, ``--crops`` random-resized 28 px crops each (the fixed crops of
``positional_attack.py``), with the probe's own fixed masks. Outputs: ``<out>/probe/<method>_s<seed>.json``
and ``.png`` per model (finished ones are skipped) and a table of gains on stdout.

    python tools/study/probe_study_models.py --out work_dirs/fmnist_study --seeds 2
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import sys
from typing import Dict, List

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import fashion_mnist_study as study  # noqa: E402
import positional_attack  # noqa: E402

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# the study's budgets (APE l2 3, RPE coord l_inf 20) inside each range; RPE coord from a quarter patch, since on
# the 7x7 grid (offsets -6..6) a uniform shift of about one patch already gives the largest loss
BUDGETS: Dict[str, List[float]] = {
    'ape-embed-l2': [1., 3., 5.],
    'ape-coord-l2': [1., 3., 5.],
    'rpe-embed-l2': [1., 3., 5.],
    'rpe-coord-linf': [0.25, 0.5, 1., 2., 3., 5., 10., 15., 20.],
}


def plot_probe():
    """``plot`` of ``tools/analysis_tools/adversary_probe.py`` (one figure layout for every probe)."""
    spec = importlib.util.spec_from_file_location(
        'adversary_probe_tool', osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'adversary_probe.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool.plot


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default='work_dirs/fmnist_study', help="the study's --out")
    fits = [m for m in study.METHODS if positional_attack.attacks_for(m)]
    p.add_argument('--methods', nargs='+', default=fits, choices=fits)
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--images', type=int, default=64, help='test images of the fixed batch')
    p.add_argument('--crops', type=int, default=2, help='crops per image')
    p.add_argument('--steps', type=int, default=10, help='PGD steps')
    p.add_argument('--step-size', type=float, default=0.25, help='PGD step as a fraction of eps')
    p.add_argument('--scan-points', type=int, default=17, help='uniform shifts per coordinate attack')
    p.add_argument('--data-dir', default=study.DATA_DIR)
    p.add_argument('--synthetic', action='store_true', help='TESTS ONLY: random images instead of Fashion-MNIST')
    p.add_argument('--threads', type=int, default=2)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    import logging
    from mmengine.logging import MMLogger
    import adpe_mm  # noqa: F401  (registers MAEPlus)
    from adpe_mm.analysis.adversary_probe import probe
    MMLogger.get_instance('mmengine').setLevel(logging.WARNING)
    raw = study.load_data(args.data_dir, args.synthetic)
    x_train, x_test = raw['train'][0], raw['test'][0]
    if args.images > len(x_test):
        raise ValueError(f'--images {args.images} exceeds the {len(x_test)} test images')
    x = study.to_tensor(x_test, float(x_train.mean()), float(x_train.std()))
    grid = (study.CROP // study.PATCH)**2
    crops, _ = positional_attack.probe_batch(x, args.images, args.crops, grid, int(grid * (1 - 0.75)))
    os.makedirs(osp.join(args.out, 'probe'), exist_ok=True)
    plot = plot_probe()
    results = {}
    for seed in args.seeds:
        for m in args.methods:
            ckpt = osp.join(args.out, 'pretrained', f'{m}_s{seed}.pth')
            path = osp.join(args.out, 'probe', f'{m}_s{seed}.json')
            if osp.exists(path):
                with open(path) as f:
                    results[f'{m}_s{seed}'] = json.load(f)
                continue
            if not osp.exists(ckpt):
                print(f'[missing] {ckpt}: run fashion_mnist_study.py for {m} seed {seed} first', flush=True)
                continue
            state = torch.load(ckpt, map_location='cpu', weights_only=True)['state']
            cfg = study.pretrainer_cfg(m)
            budgets = {a: e for a, e in BUDGETS.items() if a.startswith('ape') or study.METHODS[m].get('rpe')}
            result = probe(cfg, state, crops, budgets, args.steps, args.step_size, seed=0,
                           scan_points=args.scan_points)
            result['settings'].update(method=m, seed=seed, crops_per_image=args.crops)
            if study.METHODS[m].get('fresh'):  # its persistent adversaries stayed at zero: nothing trained to read
                result['own'] = None
            with open(path + '.tmp', 'w') as f:
                json.dump(result, f)
            os.replace(path + '.tmp', path)
            plot(result, path[:-len('.json')] + '.png')
            results[f'{m}_s{seed}'] = result
    if not results:
        raise SystemExit(f'no pretrained models of {args.methods} (seeds {args.seeds}) under {args.out}/pretrained')
    for name, result in results.items():
        rel = result['reliance']
        print(f"{name}: clean {rel['clean']:.4f}, without APE {rel['without_ape']:.4f}"
              + (f", without iRPE {rel['without_rpe']:.4f} (tables {min(rel['rpe_table_norms'].values()):.2f}-"
                 f"{max(rel['rpe_table_norms'].values()):.2f})" if 'without_rpe' in rel else ''))
        for attack, runs in result['attacks'].items():
            print(f'  {attack}: ' + '  '.join(f"{r['eps']:g}: {r['gain']:.4f}" for r in runs))
        if result['own'] is not None:
            print(f"  own trained adversary: loss there - clean {result['own']['trained_gain']:+.4f}")
    return results


if __name__ == '__main__':
    main()
