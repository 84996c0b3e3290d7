#!/usr/bin/env python
r"""One-GPU check of the pretraining step (run by ``tools/analysis_tools/gpu_check.sh``, under 8 minutes).

Prints, in order:

1. the card (name, compute capability, memory, torch/CUDA versions) and the peak dense bf16 FLOP/s used for
   MFU (:data:`PEAK_BF16_TFLOPS`, matched on the card's name; ``--peak-tflops`` overrides);
2. bf16 autocast vs float32 on one batch, for MAE+, each AdPE mode (APE/iRPE x embed/coord) and FGSM: the
   relative loss difference, the cosine of the weight gradients and of the adversary gradients (for FGSM:
   the fraction of pixels whose perturbation ``eps * sign(grad)`` has the same sign);
3. for each attention kind of the models (plain (APE), iRPE bias, iRPE with the bias aligned
   (``fused='aligned'``); at the token counts of a 112 px crop (7 x 7 + cls) and of MAE's 224 decoder), with
   float32 weights under bf16 autocast as in training, forward and backward: the
   ``scaled_dot_product_attention`` backend torch picks (from the profiler's op names), the backends that run
   when forced one at a time (``torch.nn.attention.sdpa_kernel``), and the bias's dtype and whether it reaches
   SDPA in the memory-efficient kernel's layout (else SDPA pads a copy of it in every call);
4. per pretraining step at ViT-B with the largest batch that fits (doubling from ``--min-batch``): step time,
   images/s, peak memory and MFU for MAE 224, MAE+ 1x112, MAE+ 4x112 (APE and iRPE) and AdPE RPE coord, and
   the ratios to MAE (each row printed as soon as it is measured); MFU = 6 x forward multiply-adds x
   images/s / peak FLOP/s (forward multiply-adds from :func:`adpe_mm.analysis.flops.model_flops`, one
   multiply-add = 2 FLOPs, backward = 2 x forward);
5. the targets: MAE+ 4x112 bf16 >= 45% MFU, AdPE RPE coord / MAE+ iRPE <= 1.05 and MAE+ iRPE / APE <= 1.10
   (time per image).

The step is ``benchmark_pretrain.StepBenchmark`` (the same model, optimizer wrapper and synthetic crops),
run here in one process, one entry after the other (on one GPU the entries' memory would add up).
``--fused-adamw`` and ``--aligned-bias`` time (and check the agreement of) the GPU switches of
``docs/benchmarks.md`` instead of the configs' defaults. The JSON (``--json``) is rewritten after every
section, so a run cut short keeps what it measured. ``--dry-run`` runs everything on CPU with the tiny ViT,
batch 2 and 2 steps: the structure and the agreement numbers are real, the timings and MFU are not
meaningful.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))  # the config paths below are relative to it
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

    from adpe_mm.adversary import project_
    cfg, _ = load_config(Entry(name, osp.join(REPO, config), {**switch_options(config, args), **options}, None),
                         args.arch)
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

# the aten ops behind each SDPA backend (CUDA and CPU names), as the profiler records them
SDPA_OPS = {'_scaled_dot_product_flash_attention': 'FLASH_ATTENTION',
            '_scaled_dot_product_efficient_attention': 'EFFICIENT_ATTENTION',
            '_scaled_dot_product_cudnn_attention': 'CUDNN_ATTENTION',
            '_scaled_dot_product_fused_attention_overrideable': 'OVERRIDEABLE',
            '_scaled_dot_product_attention_math': 'MATH'}


def _sdpa_chosen(run) -> List[str]:
    """The SDPA backends that ``run()`` dispatches to when torch chooses (read from the profiler's op names)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    names = {e.name for e in prof.events()}
    return sorted({backend for op, backend in SDPA_OPS.items() if any(n.startswith('aten::' + op) for n in names)})


def sdpa_backends(args, device: str) -> List[Dict]:
    """For each attention kind at the models' shapes, in training's precision (float32 weights under bf16
    autocast): the backend torch picks for forward + backward, the backends that run when forced one at a
    time (``sdpa_kernel``; a refusal is caught with its reason), and whether the iRPE bias reaches SDPA in the
    memory-efficient kernel's layout (:func:`~adpe_mm.models.layers.attention.align_bias`: strides a multiple
    of :data:`~adpe_mm.models.layers.attention.SDPA_MASK_ALIGN`, last stride 1; else SDPA copies it)."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from adpe_mm.models.layers import attention as attention_module
    from adpe_mm.models.layers.attention import SDPA_MASK_ALIGN, Attention, AttentionContext
    dims, heads = (128, 4) if args.dry_run else (768, 12)
    kinds = [('APE (no bias), 112 crop', None, True, (7, 7)), ('iRPE integer, 112 crop', dict(ratio=1.9), True, (7, 7)),
             ('iRPE relaxed + coord adversary, 112 crop',
              dict(ratio=1.9, adversary=dict(mode='coord', norm='linf', eps=20.)), True, (7, 7)),
             ('iRPE integer aligned, 112 crop', dict(ratio=1.9), 'aligned', (7, 7)),
             ('APE (no bias), MAE 224 decoder', None, True, (14, 14))]
    backends = [b for b in ('FLASH_ATTENTION', 'EFFICIENT_ATTENTION', 'CUDNN_ATTENTION', 'MATH')
                if hasattr(SDPBackend, b)]
    masks = []
    sdpa = attention_module.F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kwargs):  # records the bias as SDPA receives it
        masks.append(None if attn_mask is None else (attn_mask.dtype, attn_mask.stride()))
        return sdpa(q, k, v, attn_mask=attn_mask, **kwargs)

    rows = []
    for label, rpe, fused, hw in kinds:
        attn = Attention(dims, heads, rpe=rpe, fused=fused).to(device)
        L = hw[0] * hw[1] + 1
        x = torch.randn(args.agree_batch * 4, L, dims, device=device, requires_grad=True)
        rows_mask = torch.rand(x.shape[0], L, device=device) < 0.75
        rows_mask[:, 0] = False

        def run():
            with torch.autocast(device, dtype=torch.bfloat16):
                out = attn(x, AttentionContext(hw, rows_mask))
            out.float().sum().backward()

        attention_module.F.scaled_dot_product_attention = spy
        try:
            chosen = _sdpa_chosen(run)
        finally:
            attention_module.F.scaled_dot_product_attention = sdpa
        mask = masks[-1]
        ok, why = [], {}
        for b in backends:
            try:
                with sdpa_kernel([getattr(SDPBackend, b)]):
                    run()
                ok.append(b)
            except (RuntimeError, NotImplementedError, ValueError) as e:
                why[b] = str(e).strip().splitlines()[0][:120]
        rows.append(dict(attention=label, tokens=L, chosen=chosen, usable=ok, refused=why,
                         bias_dtype=None if mask is None else str(mask[0]).replace('torch.', ''),
                         bias_aligned=None if mask is None else (
                             mask[1][-1] == 1 and all(s % SDPA_MASK_ALIGN == 0 for s in mask[1][:-1]))))
    return rows


# ------------------------------------------------------------------------------------------------ speed

def switch_options(config: str, args) -> dict:
    """The config overrides of the GPU switches asked for on the command line (``--fused-adamw``,
    ``--aligned-bias``); the aligned bias only where the config has an iRPE (adpe_mm's attention)."""
    from mmengine.config import Config
    options = {}
    if args.fused_adamw:
        options['optim_wrapper.optimizer.fused'] = True
    if args.aligned_bias:
        model = Config.fromfile(osp.join(REPO, config)).model
        for part in ('backbone', 'neck'):
            if model.get(part, {}).get('rpe'):
                options[f'model.{part}.fused_attn'] = 'aligned'
    return options


def _is_oom(error: BaseException) -> bool:
    # torch.cuda.OutOfMemoryError, or a cuBLAS / cuDNN allocation failure
    return isinstance(error, RuntimeError) and ('out of memory' in str(error).lower() or 'alloc' in str(error).lower())


def time_entry(name: str, config: str, options: dict, args, device: str) -> Dict:
    """Largest batch that fits (doubling from ``--min-batch`` while a probe step fits and the entry's
    ``--search-s`` budget lasts), then ``--steps`` timed steps at it."""
    import torch
    settings = dict(device=device, amp_dtype='bfloat16', arch=args.arch, cfg_options={}, threads=None,
                    seed=args.seed, flops='formula')
    entry = Entry(name, osp.join(REPO, config), {**switch_options(config, args), **options}, None)
    batch, best, stop, t0 = args.min_batch, None, None, time.time()
    while stop is None:
        bench = None
        try:
            bench = StepBenchmark(entry, dict(settings, batch_size=batch))
            bench.step()
            best = batch
        except RuntimeError as e:
            if not _is_oom(e):
                raise
            stop = f'batch {batch} out of memory'
        finally:
            del bench  # before the next build: no two models on the card at once
            if device == 'cuda':
                torch.cuda.empty_cache()
        if stop is None:
            batch *= 2
            stop = ('dry run' if args.dry_run else f'--max-batch {args.max_batch}' if batch > args.max_batch else
                    f'--search-s {args.search_s:g}' if time.time() - t0 > args.search_s else None)
    if best is None:
        raise RuntimeError(f'{name}: batch {args.min_batch} does not fit')
    bench = StepBenchmark(entry, dict(settings, batch_size=best))
    for _ in range(args.warmup):
        bench.step()
    times = sorted(bench.step()['step'] for _ in range(args.steps))
    step = times[len(times) // 2]
    macs = bench.info['flops_per_image']['total']  # forward multiply-adds per image
    row = dict(name=name, batch=best, search_stop=stop, crops=bench.info['crops'] or 1, step_ms=1e3 * step,
               images_per_s=best / step, peak_mem_gib=bench.peak_memory()['bytes'] / 2**30,
               gmacs_per_image=macs / 1e9, train_tflops_per_s=6 * macs * best / step / 1e12,
               optim_wrapper=bench.info['optim_wrapper'], options={k: repr(v) for k, v in entry.options.items()})
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
    p.add_argument('--search-s', type=float, default=45., help='seconds per entry for the batch search: no '
                   'further doubling after that (keeps the whole check under 8 minutes)')
    p.add_argument('--fused-adamw', action='store_true', help='every entry with optim_wrapper.optimizer.fused=True')
    p.add_argument('--aligned-bias', action='store_true',
                   help="iRPE entries with fused_attn='aligned' in the encoder and decoder")
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
    # the step builds log through this one: keep their warnings (frozen sin-cos tables) out of the table
    MMLogger.get_instance('benchmark_pretrain', log_level='ERROR')
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
    result = dict(card=info, peak_bf16_tflops=peak, dry_run=args.dry_run, switches=dict(
        fused_adamw=args.fused_adamw, aligned_bias=args.aligned_bias))

    def save(**parts):  # the JSON so far, after every section (a timeout keeps what was measured)
        result.update(parts, seconds=time.time() - t0)
        if args.json:
            os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
            with open(args.json, 'w') as f:
                json.dump(result, f, indent=1, default=str)

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
              f"(rel diff {row['loss_rel_diff']:.2e}); weight grad cosine {row['weight_grad_cosine']:.5f}; {adv}",
              flush=True)
    save(agreement=agree)
    print('\n== SDPA backends (forward + backward, fp32 weights under bf16 autocast): chosen by torch; usable '
          'when forced; the bias as SDPA gets it')
    backends = sdpa_backends(args, device)
    for row in backends:
        bias = ('no bias' if row['bias_dtype'] is None else
                f"bias {row['bias_dtype']} {'aligned' if row['bias_aligned'] else 'unaligned (SDPA copies it)'}")
        print(f"{row['attention']:42s} L={row['tokens']:<4d} chosen {'+'.join(row['chosen']) or '?'}; "
              f"usable {', '.join(row['usable']) or 'none'}; {bias}", flush=True)
    save(sdpa=backends)
    switches = [f for f, on in (('fused AdamW', args.fused_adamw), ('aligned iRPE bias', args.aligned_bias)) if on]
    print(f"\n== step, ViT-{args.arch}, bf16, {', '.join(switches) or 'default switches'}, largest batch that fits "
          f"(doubling from {args.min_batch}, {args.search_s:g} s per entry), median of {args.steps} steps"
          + (' -- dry run: timings are not meaningful' if args.dry_run else ''))
    header = ('entry', 'batch', 'step ms', 'img/s', 'peak GiB', 'GMACs/img', 'TFLOP/s', 'MFU', 'time/img vs MAE',
              'FLOPs/img vs MAE', 'search stopped by')
    print('| ' + ' | '.join(header) + ' |')
    print('|' + '---|' * len(header), flush=True)
    speed = []
    for name, (config, options) in SPEED.items():  # each row printed (and saved) as soon as it is measured
        r = time_entry(name, config, options, args, device)
        base = (speed or [r])[0]
        r['mfu'] = r['train_tflops_per_s'] / peak if peak else None
        r['time_per_image_vs_mae'] = base['images_per_s'] / r['images_per_s']
        r['flops_per_image_vs_mae'] = r['gmacs_per_image'] / base['gmacs_per_image']
        speed.append(r)
        cells = (r['name'], r['batch'], f"{r['step_ms']:.1f}", f"{r['images_per_s']:.1f}", f"{r['peak_mem_gib']:.2f}",
                 f"{r['gmacs_per_image']:.2f}", f"{r['train_tflops_per_s']:.2f}",
                 '-' if r['mfu'] is None else f"{100 * r['mfu']:.1f}%", f"{r['time_per_image_vs_mae']:.3f}",
                 f"{r['flops_per_image_vs_mae']:.3f}", r['search_stop'])
        print('| ' + ' | '.join(str(c) for c in cells) + ' |', flush=True)
        save(speed=speed)
    goals = targets(speed, measured=not args.dry_run)
    print('\n== targets')
    for g in goals:
        verdict = ('not measured (dry run)' if args.dry_run else
                   {True: 'MET', False: 'MISSED', None: 'no peak'}[g['met']])
        print(f"{g['target']:58s} {fmt(g['value'], '{:.3f}')}  {verdict}")
    save(targets=goals)
    print(f"\ngpu_check finished in {result['seconds']:.0f} s")
    return result


if __name__ == '__main__':
    main()
