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
import os.path as osp
import sys
from typing import Dict, List

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
    positional_attack.add_model_args(p, images=64, crops=2)
    p.add_argument('--scan-points', type=int, default=17, help='uniform shifts per coordinate attack')
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    import adpe_mm  # noqa: F401  (registers MAEPlus)
    from adpe_mm.analysis.adversary_probe import probe
    crops, _ = positional_attack.fixed_batch(args)
    plot = plot_probe()
    results = {}
    for m, seed, path, result, state in positional_attack.each_model(args, 'probe'):
        if result is None:
            budgets = {a: e for a, e in BUDGETS.items() if a.startswith('ape') or study.METHODS[m].get('rpe')}
            result = probe(study.pretrainer_cfg(m), state, crops, budgets, args.steps, args.step_size, seed=0,
                           scan_points=args.scan_points)
            result['settings'].update(method=m, seed=seed, crops_per_image=args.crops)
            if study.METHODS[m].get('fresh'):  # its persistent adversaries stayed at zero: nothing trained to read
                result['own'] = None
            study.write_json(result, path)
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
