"""Positional robustness of the Fashion-MNIST study's pretrained models: the MAE+ loss under a fresh attack.

The ``adv_gap`` that the study logs during pretraining compares the loss at the co-trained adversary with the
loss at zero, and the weights adapt to that adversary while it moves. This tool asks the question AdPE is
about after the fact: how much can a NEW adversary, optimised against the frozen final weights, raise the
reconstruction loss? Every MAE+-family model in ``<out>/pretrained/`` (written by
``fashion_mnist_study.py``) is attacked with each of the study's four adversaries that fits it (the two APE
ones on every model, the two iRPE ones on models with iRPE), with the budgets the study trains with:

* the same held-out batch for every model: the first ``--images`` test images, ``--crops`` random-resized
  28 px crops each and one mask per crop, all drawn from fixed seeds;
* PGD from zero with the weights frozen, ``--steps`` steps of ``--step-size * eps`` (signed gradient for
  l_inf, l2-normalised gradient for l2), each adversary tensor projected onto its ball after every step;
* ``attacked`` is the highest loss over the iterates (zero included, so the gap is >= 0), ``gap`` =
  attacked - clean, where ``clean`` is the loss without an adversary (the model that is transferred). For
  an AdPE model attacked in its own mode, ``trained`` is the loss at the adversary it was pretrained with,
  and a second PGD run starts from that adversary; ``attacked`` is the higher of the two runs;
* ``reliance`` (``adpe_mm.analysis.adversary_probe.model_reliance``): the clean loss, the loss with the APE
  zeroed, every iRPE table's l2 norm and the loss with all tables zeroed. A model can defeat an adversary by
  no longer using what it perturbs, and a small gap alone does not tell that apart from robustness.

Outputs: ``<out>/attack/<method>_s<seed>.json`` per model (finished ones are skipped), ``attack.json`` (mean
and sample std over seeds, paired differences from ``maeplus`` / ``maeplus_rpe``) and ``attack.md``.

    python tools/study/positional_attack.py --out work_dirs/fmnist_study
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Tuple

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import fashion_mnist_study as study  # noqa: E402

# one attack per mode with the study's budgets; RPE coord also with the corrected geometry ('fade', whose ball
# has no zero-gradient region: the original 'clamp' attack cannot move once it saturates)
ATTACKS: Dict[str, dict] = {m[len('adpe_'):]: study.METHODS[m]['adversary']
                            for m in ('adpe_ape_embed', 'adpe_ape_coord', 'adpe_rpe_embed', 'adpe_rpe_coord',
                                      'adpe_rpe_coord_fade')}


def attacks_for(method: str) -> List[str]:
    """The attacks that fit a pretrained model: APE ones on every MAE+ variant, iRPE ones with iRPE."""
    spec = study.METHODS[method]
    if spec['kind'] != 'maeplus':
        return []
    return [a for a, adv in ATTACKS.items() if adv['pe'] == 'ape' or spec.get('rpe')]


def probe_batch(x_test: torch.Tensor, images: int, crops: int, num_patches: int, num_visible: int):
    """Fixed crops [crops * images, 3, 28, 28] (crop-major) and masks [crops * images, N] for every model."""
    g = torch.Generator().manual_seed(20261201)
    x = torch.cat([study.random_resized_crops(x_test[:images], study.CROP, g) for _ in range(crops)])
    noise = torch.rand(x.shape[0], num_patches, generator=torch.Generator().manual_seed(1201))
    mask = torch.ones(x.shape[0], num_patches, dtype=torch.bool)
    mask.scatter_(1, noise.argsort(1)[:, :num_visible], False)
    return x, mask


def load_with(method: str, state: dict, attack: str, keep_trained: bool):
    """The pretrained weights in a model that carries ``attack``'s adversary: zero, or the trained one."""
    from adpe_mm.adversary import is_adversary
    model = study.build_pretrainer(method, adversary=ATTACKS[attack])
    weights = {k: v for k, v in state.items() if keep_trained or not k.rsplit('.', 1)[-1].startswith('adv_')}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    adv_names = {n for n, p in model.named_parameters() if is_adversary(p)}
    if unexpected or not set(missing) <= adv_names:
        raise RuntimeError(f'{method} + {attack}: unexpected keys {unexpected}, missing non-adversary keys '
                           f'{sorted(set(missing) - adv_names)}')
    model.eval()
    for name, p in model.named_parameters():
        p.requires_grad_(name in adv_names)
    return model, [p for p in model.parameters() if is_adversary(p)]


def masked_loss(model, crops, mask, adversarial: bool = True) -> torch.Tensor:
    pred, _ = model.reconstruct(crops, adversarial=adversarial, patch_mask=mask)
    return model.head.loss(pred, crops, mask.float())


def pgd(model, crops, mask, steps: int, step_size: float, start: str) -> Tuple[List[float], List[float]]:
    """The loss at every iterate of a projected ascent (weights frozen) from zero or from the model's own
    adversaries (``start='current'``), and the norms of the adversaries at the highest-loss iterate."""
    result = model.attack(crops, mask, start, 'best', steps=steps, step_size=step_size)
    return result.losses, [float(v.norm()) for v in result.values.values()]


def attack_one(method: str, seed: int, state: dict, crops, mask, args) -> dict:
    rec = dict(method=method, seed=seed, attacks={}, settings=dict(images=args.images, crops=args.crops,
                                                                  steps=args.steps, step_size=args.step_size))
    from adpe_mm.analysis.adversary_probe import model_reliance
    own = study.METHODS[method].get('adversary')
    for attack in attacks_for(method):
        t0 = time.time()
        model, _ = load_with(method, state, attack, keep_trained=False)
        with torch.no_grad():
            clean = float(masked_loss(model, crops, mask, adversarial=False))
        curve, norms = pgd(model, crops, mask, args.steps, args.step_size, start='zero')
        out = dict(clean=clean, attacked=max(curve), curve=curve, adversary_norms=norms)
        if own == ATTACKS[attack] and not study.METHODS[method].get('fresh'):
            # the adversary this model was pretrained against: a second start from it (a fresh method's own
            # adversary restarted every step and its stored values are zero: nothing trained to start from)
            trained, _ = load_with(method, state, attack, keep_trained=True)
            out['curve_from_trained'], _ = pgd(trained, crops, mask, args.steps, args.step_size, start='current')
            out['trained'] = out['curve_from_trained'][0]
            out['attacked'] = max(out['attacked'], max(out['curve_from_trained']))
        out.update(gap=out['attacked'] - clean, wall_s=time.time() - t0)
        rec['attacks'][attack] = out
        print(f"  {method} s{seed} {attack}: clean {clean:.4f} attacked {out['attacked']:.4f} "
              f"gap {out['gap']:+.4f}" + (f" trained {out['trained']:.4f}" if 'trained' in out else ''), flush=True)
    rec['reliance'] = model_reliance(model, crops, mask)  # the frozen weights; the attack's adversary is unused
    return rec


def summarise(recs: List[dict]) -> dict:
    """Mean / std over seeds of every (method, attack) gap, and seed-paired differences from the baseline."""
    summary = {}
    for m in dict.fromkeys(r['method'] for r in recs):
        rs = [r for r in recs if r['method'] == m]
        summary[m] = {}
        for attack in attacks_for(m):
            vals = [r['attacks'][attack] for r in rs if attack in r['attacks']]
            if not vals:  # e.g. records made before this attack existed: no entry rather than a nan
                continue
            entry = dict(clean=study.mean_std([v['clean'] for v in vals]),
                         attacked=study.mean_std([v['attacked'] for v in vals]),
                         gap=study.mean_std([v['gap'] for v in vals]))
            if all('trained' in v for v in vals):
                entry['trained_gap'] = study.mean_std([v['trained'] - v['clean'] for v in vals])
            base = 'maeplus_rpe' if ATTACKS[attack]['pe'] == 'rpe' else 'maeplus'
            if m != base:
                runs = [dict(method=r['method'], seed=r['seed'], gap=r['attacks'][attack]['gap'])
                        for r in recs if attack in r['attacks']]
                entry['gap_vs_' + base] = study.paired_difference(runs, m, base, 'gap')
            summary[m][attack] = entry
    return summary


def table(summary: dict) -> str:
    names = list(ATTACKS)
    lines = ['| pretrained model | clean loss | ' + ' | '.join(f'{a} attack: loss (gap)' for a in names) + ' |',
             '|---' * (2 + len(names)) + '|']
    for m, entries in summary.items():
        clean = next(iter(entries.values()))['clean'] if entries else None
        cells = []
        for a in names:
            e = entries.get(a)
            if e is None:
                cells.append('-')
                continue
            cell = f"{study.fmt(e['attacked'], 1., 3)} ({study.fmt(e['gap'], 1., 3)})"
            paired = [v for k, v in e.items() if k.startswith('gap_vs_') and v]
            if paired and paired[0]['n'] > 1:
                cell += f" Δgap {paired[0]['mean']:+.3f} ± {paired[0]['ci95']:.3f}"
            if 'trained_gap' in e:
                cell += f" [trained adv: {e['trained_gap']['mean']:+.3f}]"
            cells.append(cell)
        lines.append(f"| {m} | {study.fmt(clean, 1., 3)} | {' | '.join(cells)} |")
    return '\n'.join(lines) + '\n'


def add_model_args(p: argparse.ArgumentParser, images: int, crops: int) -> None:
    """The options that pick the study's pretrained models and the fixed batch (shared with the probe tool)."""
    p.add_argument('--out', default='work_dirs/fmnist_study', help="the study's --out")
    fits = [m for m in study.METHODS if attacks_for(m)]
    p.add_argument('--methods', nargs='+', default=fits, choices=fits)
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--images', type=int, default=images, help='test images of the fixed batch')
    p.add_argument('--crops', type=int, default=crops, help='crops per image')
    p.add_argument('--steps', type=int, default=10, help='PGD steps')
    p.add_argument('--step-size', type=float, default=0.25, help='PGD step as a fraction of eps')
    p.add_argument('--data-dir', default=study.DATA_DIR)
    p.add_argument('--synthetic', action='store_true', help='TESTS ONLY: random images instead of Fashion-MNIST')
    p.add_argument('--threads', type=int, default=2)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p, images=128, crops=4)
    return p.parse_args(argv)


def fixed_batch(args):
    """:func:`probe_batch` of the first ``args.images`` test images (quiet logs, ``args.threads`` threads)."""
    torch.set_num_threads(args.threads)
    import logging
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel(logging.WARNING)
    raw = study.load_data(args.data_dir, args.synthetic)
    x_train, x_test = raw['train'][0], raw['test'][0]
    if args.images > len(x_test):
        raise ValueError(f'--images {args.images} exceeds the {len(x_test)} test images')
    x = study.to_tensor(x_test, float(x_train.mean()), float(x_train.std()))
    grid = (study.CROP // study.PATCH)**2
    return probe_batch(x, args.images, args.crops, grid, int(grid * (1 - 0.75)))


def each_model(args, kind: str):
    """For every (seed, method) of ``args`` with a record or a pretrained model: ``(method, seed, path,
    record, state)``, where ``path`` is ``<out>/<kind>/<method>_s<seed>.json`` and either ``record`` is what
    was written there or ``state`` is the pretrained model's state dict (a missing one is reported)."""
    os.makedirs(osp.join(args.out, kind), exist_ok=True)
    for seed in args.seeds:
        for m in args.methods:
            ckpt = osp.join(args.out, 'pretrained', f'{m}_s{seed}.pth')
            path = osp.join(args.out, kind, f'{m}_s{seed}.json')
            if osp.exists(path):
                with open(path) as f:
                    yield m, seed, path, json.load(f), None
            elif not osp.exists(ckpt):
                print(f'[missing] {ckpt}: run fashion_mnist_study.py for {m} seed {seed} first', flush=True)
            else:
                yield m, seed, path, None, torch.load(ckpt, map_location='cpu', weights_only=True)['state']


def main(argv=None) -> dict:
    args = parse_args(argv)
    crops, mask = fixed_batch(args)
    recs = []
    for m, seed, path, rec, state in each_model(args, 'attack'):
        if rec is None:
            rec = attack_one(m, seed, state, crops, mask, args)
            study.write_json(rec, path)
        recs.append(rec)
    if not recs:
        raise SystemExit(f'no pretrained models of {args.methods} (seeds {args.seeds}) under {args.out}/pretrained')
    summary = summarise(recs)
    with open(osp.join(args.out, 'attack.json'), 'w') as f:
        json.dump(dict(settings=vars(args), attacks=ATTACKS, models=summary), f, indent=1)
    text = table(summary)
    with open(osp.join(args.out, 'attack.md'), 'w') as f:
        f.write(text)
    print(text)
    return summary


if __name__ == '__main__':
    main()
