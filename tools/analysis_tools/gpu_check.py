#!/usr/bin/env python
r"""One-GPU check of the pretraining step (run by ``tools/analysis_tools/gpu_check.sh``, under 8 minutes).

Prints, in order:

1. the card (name, compute capability, memory, torch/CUDA versions) and the peak dense bf16 FLOP/s used for
   MFU (:data:`PEAK_BF16_TFLOPS`, matched on the card's name; ``--peak-tflops`` overrides);
2. bf16 autocast vs float32 on one batch, for MAE+, each AdPE mode (APE/iRPE x embed/coord) and FGSM: the
   relative loss difference, the cosine of the weight gradients and of the adversary gradients (for FGSM:
   the fraction of pixels whose perturbation ``eps * sign(grad)`` has the same sign);
3. which ``scaled_dot_product_attention`` backends each attention of the models can run (forward and
   backward, in the autocast dtype): plain (APE), iRPE bias, and iRPE with the bias aligned
   (``fused='aligned'``), at the token counts of a 112 px crop (7 x 7 + cls) and of MAE's 224 decoder;
4. per pretraining step at ViT-B with the largest batch that fits (doubling from ``--min-batch``): step time,
   images/s, peak memory and MFU for MAE 224, MAE+ 1x112, MAE+ 4x112 (APE and iRPE) and AdPE RPE coord, and
   the ratios to MAE; MFU = 6 x forward multiply-adds x images/s / peak FLOP/s (forward multiply-adds from
   :func:`adpe_mm.analysis.flops.model_flops`, one multiply-add = 2 FLOPs, backward = 2 x forward);
5. the targets: MAE+ 4x112 bf16 >= 45% MFU, AdPE RPE coord / MAE+ iRPE <= 1.05 and MAE+ iRPE / APE <= 1.10
   (time per image).

The step is ``benchmark_pretrain.StepBenchmark`` (the same model, optimizer wrapper and synthetic crops),
run here in one process, one entry after the other (on one GPU the entries' memory would add up).
``--dry-run`` runs everything on CPU with the tiny ViT, batch 2 and 2 steps: the structure and the agreement
numbers are real, the timings and MFU are not meaningful.
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_pretrain import Entry, StepBenchmark, build_model, load_config, machine_description  # noqa: E402

# Peak dense bf16 tensor-core FLOP/s (no sparsity), in TFLOP/s, by a substring of the device name.
PEAK_BF16_TFLOPS = {'B200': 2250., 'H200': 989., 'H100 PCIe': 756., 'H100': 989., 'A100': 312., 'L40S': 362.,
                    'L40': 181., 'L4': 121., 'A10G': 70., 'A10': 125., 'RTX 4090': 165., 'RTX 3090': 71.}
AGREEMENT = {  # name: (config, overrides)
    'MAE+': ('configs/mae_plus/maeplus_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py', {}),
    'AdPE ape-embed': ('configs/adpe/table_a2/adpe-ape-embed-l2-eps3_vit-base-p16_4x112-8xb128-accum4-amp-'
                       'coslr-400e_in1k.py', {}),
    'AdPE ape-coord': ('configs/adpe/table_a2/adpe-ape-coord-l2-eps3_vit-base-p16_4x112-8xb128-accum4-amp-'
                       'coslr-400e_in1k.py', {}),
    'AdPE rpe-embed': ('configs/adpe/table_a2/adpe-rpe-embed-linf-eps15_vit-base-p16_4x112-8xb128-accum4-amp-'
                       'coslr-400e_in1k.py', {}),
    'AdPE rpe-coord': ('configs/adpe/table_a2/adpe-rpe-coord-linf-eps20_vit-base-p16_4x112-8xb128-accum4-amp-'
                       'coslr-400e_in1k.py', {}),
    'FGSM': ('configs/fgsm/maeplus-fgsm-linf-eps0.01_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py',
             {}),
}
SPEED = {  # name: (config, overrides); the first is the baseline of the ratios
    'MAE 224': ('configs/mae/mae_vit-base-p16_8xb128-accum4-amp-coslr-400e_in1k.py', {}),
    'MAE+ 1x112': ('configs/mae_plus/maeplus_vit-base-p16_1x112-8xb128-accum4-amp-coslr-400e_in1k.py', {}),
    'MAE+ 4x112 APE': (AGREEMENT['MAE+'][0], {}),
    'MAE+ 4x112 iRPE': ('configs/mae_plus/maeplus-rpe_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py',
                        {}),
    'AdPE RPE coord': (AGREEMENT['AdPE rpe-coord'][0], {}),
}
TARGETS = [  # (description, kind, numerator, denominator or None, bound)
    ('MAE+ 4x112 APE bf16 MFU >= 45%', 'mfu', 'MAE+ 4x112 APE', None, 0.45),
    ('AdPE RPE coord / MAE+ 4x112 iRPE time per image <= 1.05', 'ratio', 'AdPE RPE coord', 'MAE+ 4x112 iRPE', 1.05),
    ('MAE+ 4x112 iRPE / APE time per image <= 1.10', 'ratio', 'MAE+ 4x112 iRPE', 'MAE+ 4x112 APE', 1.10),
]


def peak_tflops(device_name: str, override: Optional[float]) -> Optional[float]:
    if override is not None:
        return override
    for key, value in PEAK_BF16_TFLOPS.items():  # longer keys first where they overlap (H100 PCIe, L40S)
        if key in device_name:
            return value
    return None


def card(device: str) -> Dict:
    import torch
    info = machine_description(device)
    if device == 'cuda':
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, capability=f'{props.major}.{props.minor}', memory_gib=props.total_memory / 2**30,
                    cuda=torch.version.cuda, bf16=torch.cuda.is_bf16_supported())
    return info


# ----------------------------------------------------------------------------------------- agreement

def _cosine(a, b) -> float:
    import torch
    a, b = a.double().flatten(), b.double().flatten()
    den = (a.norm() * b.norm()).item()
    return float(torch.dot(a, b).item() / den) if den > 0 else (1.0 if a.norm() == b.norm() else 0.0)


def agreement(name: str, config: str, options: dict, args, device: str) -> Dict:
    """bf16 autocast vs float32: one forward and backward of the same model on the same batch and mask."""
    import torch
    from mmpretrain.structures import DataSample

    from adpe_mm.models.utils.adversary import project_
    cfg, _ = load_config(Entry(name, osp.abspath(config), options, None), args.arch)
    cfg.model.pop('log_adv_gap', None)
    torch.manual_seed(args.seed)
    model = build_model(cfg).to(device).train()
    with torch.no_grad():  # an adversary inside its ball (not 0) and non-zero iRPE tables
        for n, p in model.named_parameters():
            if n.rsplit('.', 1)[-1].startswith('adv_'):
                p.copy_(p.adv_ball.eps * torch.rand_like(p).sub_(0.5))
                project_(p)
            elif 'lookup_table' in n:
                p.normal_(std=0.02)
    g = torch.Generator().manual_seed(args.seed + 1)
    crops = [torch.randn(args.agree_batch, 3, 112, 112, generator=g).to(device) for _ in range(4)]
    samples = [DataSample() for _ in range(args.agree_batch)]
    mask_step = model.mask_step.clone()  # the patch masks come from a counter-based stream

    def same_masks():
        with torch.no_grad():
            model.mask_step.copy_(mask_step)

    out = {}
    for precision in ('fp32', 'bf16'):
        model.zero_grad()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=precision == 'bf16'):
            if hasattr(model, 'fgsm_perturbation'):  # the perturbation that loss() applies, with its mask
                same_masks()
                stacked = model.stack_crops(crops)
                delta, _ = model.fgsm_perturbation(stacked, model.draw_mask(stacked.shape[0], stacked.device))
            same_masks()
            loss, _ = model.parse_losses(model.loss(crops, samples))
        loss.backward()
        grads = {n: p.grad.detach().float().clone() for n, p in model.named_parameters() if p.grad is not None}
        out[precision] = dict(loss=loss.item(), grads=grads,
                              delta=delta.detach().float() if hasattr(model, 'fgsm_perturbation') else None)
    f32, b16 = out['fp32'], out['bf16']
    adv = [n for n in f32['grads'] if n.rsplit('.', 1)[-1].startswith('adv_')]
    weights = [n for n in f32['grads'] if n not in adv]
    cat = lambda d, names: torch.cat([d[n].flatten() for n in names])  # noqa: E731
    row = dict(name=name, loss_fp32=f32['loss'], loss_bf16=b16['loss'],
               loss_rel_diff=abs(b16['loss'] - f32['loss']) / abs(f32['loss']),
               weight_grad_cosine=_cosine(cat(f32['grads'], weights), cat(b16['grads'], weights)),
               adversary='parameters' if adv else ('fgsm' if f32['delta'] is not None else None))
    if adv:
        row['adv_grad_cosine'] = _cosine(cat(f32['grads'], adv), cat(b16['grads'], adv))
        row['adv_grad_cosine_min'] = min(_cosine(f32['grads'][n], b16['grads'][n]) for n in adv)
    elif f32['delta'] is not None:
        moved = f32['delta'] != 0
        row['fgsm_sign_agreement'] = float((f32['delta'][moved] == b16['delta'][moved]).float().mean())
    return row


# ---------------------------------------------------------------------------------------- SDPA backends

def sdpa_backends(args, device: str) -> List[Dict]:
    """The SDPA backends that run forward + backward of each attention kind at the models' shapes."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from adpe_mm.models.utils import Attention, AttentionContext
    dims, heads = (128, 4) if args.dry_run else (768, 12)
    dtype = torch.bfloat16
    kinds = [('APE (no bias), 112 crop', None, True, (7, 7)), ('iRPE integer, 112 crop', dict(ratio=1.9), True, (7, 7)),
             ('iRPE relaxed + coord adversary, 112 crop',
              dict(ratio=1.9, adversary=dict(mode='coord', norm='linf', eps=20.)), True, (7, 7)),
             ('iRPE integer aligned, 112 crop', dict(ratio=1.9), 'aligned', (7, 7)),
             ('APE (no bias), MAE 224 decoder', None, True, (14, 14))]
    backends = [b for b in ('FLASH_ATTENTION', 'EFFICIENT_ATTENTION', 'CUDNN_ATTENTION', 'MATH')
                if hasattr(SDPBackend, b)]
    rows = []
    for label, rpe, fused, hw in kinds:
        attn = Attention(dims, heads, rpe=rpe, fused=fused).to(device, dtype)
        L = hw[0] * hw[1] + 1
        x = torch.randn(args.agree_batch * 4, L, dims, device=device, dtype=dtype, requires_grad=True)
        rows_mask = torch.rand(x.shape[0], L, device=device) < 0.75
        rows_mask[:, 0] = False
        ok, why = [], {}
        for b in backends:
            try:
                with sdpa_kernel([getattr(SDPBackend, b)]):
                    attn(x, AttentionContext(hw, rows_mask)).float().sum().backward()
                ok.append(b)
            except (RuntimeError, NotImplementedError, ValueError) as e:
                why[b] = str(e).strip().splitlines()[0][:120]
        rows.append(dict(attention=label, tokens=L, usable=ok, refused=why))
    return rows


# ------------------------------------------------------------------------------------------------ speed

def time_entry(name: str, config: str, options: dict, args, device: str) -> Dict:
    """Largest batch that fits (doubling), then ``--steps`` timed steps at it."""
    import torch
    settings = dict(device=device, amp_dtype='bfloat16', arch=args.arch, cfg_options={}, threads=None,
                    seed=args.seed, flops='formula')
    entry = Entry(name, osp.abspath(config), options, None)
    batch, best = args.min_batch, None
    while batch <= args.max_batch:
        try:
            bench = StepBenchmark(entry, dict(settings, batch_size=batch))
            bench.step()
            best = batch
            del bench
        except RuntimeError as e:  # torch.cuda.OutOfMemoryError, or a cuBLAS/cuDNN allocation failure
            if 'out of memory' not in str(e).lower() and 'alloc' not in str(e).lower():
                raise
            break
        finally:
            if device == 'cuda':
                torch.cuda.empty_cache()
        if args.dry_run:
            break
        batch *= 2
    if best is None:
        raise RuntimeError(f'{name}: batch {args.min_batch} does not fit')
    bench = StepBenchmark(entry, dict(settings, batch_size=best))
    for _ in range(args.warmup):
        bench.step()
    times = sorted(bench.step()['step'] for _ in range(args.steps))
    step = times[len(times) // 2]
    macs = bench.info['flops_per_image']['total']  # forward multiply-adds per image
    row = dict(name=name, batch=best, crops=bench.info['crops'] or 1, step_ms=1e3 * step, images_per_s=best / step,
               peak_mem_gib=bench.peak_memory()['bytes'] / 2**30, gmacs_per_image=macs / 1e9,
               train_tflops_per_s=6 * macs * best / step / 1e12, optim_wrapper=bench.info['optim_wrapper'])
    del bench
    if device == 'cuda':
        torch.cuda.empty_cache()
    return row


def targets(rows: List[Dict], measured: bool) -> List[Dict]:
    by = {r['name']: r for r in rows}
    out = []
    for text, kind, num, den, bound in TARGETS:
        if kind == 'mfu':
            value = by[num].get('mfu')
            ok = None if value is None else value >= bound
        else:
            value = by[den]['images_per_s'] / by[num]['images_per_s']  # time per image ratio
            ok = value <= bound
        out.append(dict(target=text, value=value, met=ok if measured else None))
    return out


# ------------------------------------------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--dry-run', action='store_true', help='CPU, tiny ViT, batch 2, 2 steps (tests)')
    p.add_argument('--peak-tflops', type=float, default=None, help='peak dense bf16 TFLOP/s of the card')
    p.add_argument('--min-batch', type=int, default=32, help='first batch of the doubling search (images)')
    p.add_argument('--max-batch', type=int, default=1024)
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--agree-batch', type=int, default=8, help='images (x 4 crops) of the agreement batch')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--json', default=None, metavar='OUT')
    args = p.parse_args(argv)
    args.arch = 'tiny' if args.dry_run else 'b'
    if args.dry_run:
        args.min_batch, args.steps, args.warmup, args.agree_batch = 2, 2, 1, 2
    return args


def fmt(value, spec='{:.4g}') -> str:
    return '-' if value is None else (spec.format(value) if isinstance(value, float) else str(value))


def main(argv=None) -> Dict:
    args = parse_args(argv)
    import logging

    import torch
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel(logging.WARNING)  # no per-parameter init log
    t0 = time.time()
    device = 'cpu' if args.dry_run else 'cuda'
    if device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('gpu_check: torch sees no CUDA device (use --dry-run on CPU)')
    info = card(device)
    peak = None if args.dry_run else peak_tflops(info.get('gpu', ''), args.peak_tflops)
    print(f"== card: {info.get('gpu', info['cpu'])}" + (f", sm {info['capability']}, {info['memory_gib']:.0f} GiB, "
          f"CUDA {info['cuda']}, bf16 {info['bf16']}" if device == 'cuda' else ' (dry run on CPU)')
          + f", torch {info['torch']}; peak bf16 {fmt(peak)} TFLOP/s"
          + (' (unknown card: pass --peak-tflops)' if peak is None and not args.dry_run else ''))
    print(f"\n== bf16 autocast vs fp32, one batch of {args.agree_batch} images x 4 crops of 112 px, ViT-{args.arch}")
    agree = []
    for name, (config, options) in AGREEMENT.items():
        row = agreement(name, config, options, args, device)
        agree.append(row)
        adv = (f"adversary grad cosine {fmt(row['adv_grad_cosine'], '{:.5f}')} "
               f"(min per tensor {fmt(row['adv_grad_cosine_min'], '{:.5f}')})" if 'adv_grad_cosine' in row else
               f"FGSM sign agreement {fmt(row['fgsm_sign_agreement'], '{:.4f}')}" if 'fgsm_sign_agreement' in row
               else 'no adversary')
        print(f"{name:16s} loss fp32 {row['loss_fp32']:.5f} bf16 {row['loss_bf16']:.5f} "
              f"(rel diff {row['loss_rel_diff']:.2e}); weight grad cosine {row['weight_grad_cosine']:.5f}; {adv}")
    print('\n== SDPA backends usable (forward + backward, bf16)')
    backends = sdpa_backends(args, device)
    for row in backends:
        print(f"{row['attention']:42s} L={row['tokens']:<4d} {', '.join(row['usable']) or 'none'}")
    print(f"\n== step, ViT-{args.arch}, bf16, largest batch that fits (doubling from {args.min_batch}), "
          f"median of {args.steps} steps" + (' -- dry run: timings are not meaningful' if args.dry_run else ''))
    speed = [time_entry(name, config, options, args, device) for name, (config, options) in SPEED.items()]
    base = speed[0]
    for row in speed:
        row['mfu'] = row['train_tflops_per_s'] / peak if peak else None
        row['time_per_image_vs_mae'] = base['images_per_s'] / row['images_per_s']
        row['flops_per_image_vs_mae'] = row['gmacs_per_image'] / base['gmacs_per_image']
    header = ('entry', 'batch', 'step ms', 'img/s', 'peak GiB', 'GMACs/img', 'TFLOP/s', 'MFU', 'time/img vs MAE',
              'FLOPs/img vs MAE')
    print('| ' + ' | '.join(header) + ' |')
    print('|' + '---|' * len(header))
    for r in speed:
        cells = (r['name'], r['batch'], f"{r['step_ms']:.1f}", f"{r['images_per_s']:.1f}", f"{r['peak_mem_gib']:.2f}",
                 f"{r['gmacs_per_image']:.2f}", f"{r['train_tflops_per_s']:.2f}",
                 '-' if r['mfu'] is None else f"{100 * r['mfu']:.1f}%", f"{r['time_per_image_vs_mae']:.3f}",
                 f"{r['flops_per_image_vs_mae']:.3f}")
        print('| ' + ' | '.join(str(c) for c in cells) + ' |')
    goals = targets(speed, measured=not args.dry_run)
    print('\n== targets')
    for g in goals:
        verdict = 'not measured (dry run)' if args.dry_run else {True: 'MET', False: 'MISSED', None: 'no peak'}[g['met']]
        print(f"{g['target']:58s} {fmt(g['value'], '{:.3f}')}  {verdict}")
    elapsed = time.time() - t0
    print(f'\ngpu_check finished in {elapsed:.0f} s')
    result = dict(card=info, peak_bf16_tflops=peak, dry_run=args.dry_run, agreement=agree, sdpa=backends,
                  speed=speed, targets=goals, seconds=elapsed)
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1, default=lambda o: None if isinstance(o, float) and math.isnan(o) else str(o))
    return result


if __name__ == '__main__':
    main()
