#!/usr/bin/env python
r"""Images per second per CPU core of the pretraining data pipelines: MAE+ k x 112 against stock MAE 224.

    .venv/bin/python tools/analysis_tools/benchmark_pipeline.py [--rounds 5] [--json work_dirs/pipeline.json]

The input is made at run time, never shipped: every embedded photo (``data/embedded``) resized to an
ImageNet-like 500 px long side and written as a quality-90 JPEG to a temporary folder. Every ENTRY is a
train pipeline run in this process on one thread (``torch``, OpenCV and PIL all single-threaded), so its
rate is per worker core: a dataloader with n workers delivers about n times it. The entries take turns on the
whole file list (interleaved rounds, the start rotating), so drift of a shared machine hits them alike;
reported are the median rate over rounds, the ratio to the ``mae-224`` entry measured in the same rounds,
and where the time goes (ms per image in each transform: decode = ``LoadImageFromFile``, crop + resize +
flip = ``MultiCrop`` or ``RandomResizedCrop`` + ``RandomFlip``, pack = ``PackInputs``).

Entries: ``mae-224`` (configs/_base_/datasets/imagenet_mae.py), ``maeplus-kK`` (configs/_base_/datasets/
imagenet_mae_plus.py with ``num_crops=K``, the default antialiased torch resize), and for k = 4 the other
resize backends (``-pillow``, ``-cv2``: the unantialiased resize before it became the default) and the
reduced JPEG decode (``-reduced``: ``MultiCrop(reduced_decode=True)`` decodes the file itself).
"""
import argparse
import json
import math
import os
import os.path as osp
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from typing import Dict, List

import cv2
import torch
from mmengine.config import Config
from PIL import Image

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO_ROOT)
import adpe_mm  # noqa: E402,F401  (registers MultiCrop)
from mmpretrain.registry import TRANSFORMS  # noqa: E402

MAE = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets', 'imagenet_mae.py')
MAE_PLUS = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets', 'imagenet_mae_plus.py')
STAGES = {'LoadImageFromFile': 'decode', 'MultiCrop': 'crop+resize+flip', 'RandomResizedCrop': 'crop+resize+flip',
          'RandomFlip': 'crop+resize+flip', 'PackInputs': 'pack'}
GPU_RATE = 1000.  # ViT-B MAE+ 4x112 images/s of one fast GPU (issue 13's estimate; no GPU was measured)


def make_jpegs(source: str, out_dir: str, long_side: int = 500, quality: int = 90, limit: int = 0) -> List[str]:
    """Every image under ``source`` resized (bicubic) to ``long_side`` on its longer side, as JPEG files."""
    paths = sorted(osp.join(root, f) for root, _, files in os.walk(source) for f in files
                   if f.lower().endswith(('.png', '.jpg', '.jpeg')))
    if not paths:
        raise FileNotFoundError(f'no photos under {source}: run tools/install.sh (it builds data/embedded)')
    written = []
    for i, path in enumerate(paths[:limit or None]):
        img = Image.open(path).convert('RGB')
        scale = long_side / max(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.BICUBIC)
        written.append(osp.join(out_dir, f'{i:03d}.jpg'))
        img.save(written[-1], quality=quality)
    return written


def entries() -> Dict[str, list]:
    """name -> train pipeline (a list of transform configs)."""
    mae = Config.fromfile(MAE).train_pipeline
    plus = Config.fromfile(MAE_PLUS).train_pipeline
    out = {'mae-224': mae}
    for k in (1, 2, 4):
        out[f'maeplus-k{k}'] = [dict(t, num_crops=k) if t['type'] == 'MultiCrop' else t for t in plus]
    for backend in ('pillow', 'cv2'):
        out[f'maeplus-k4-{backend}'] = [dict(t, backend=backend) if t['type'] == 'MultiCrop' else t for t in plus]
    out['maeplus-k4-reduced'] = [dict(t, reduced_decode=True) if t['type'] == 'MultiCrop' else t for t in plus
                                 if t['type'] != 'LoadImageFromFile']
    return out


def run_once(transforms: list, files: List[str], stage_time: Dict[str, float]) -> float:
    """Seconds to run ``transforms`` on every file; adds each transform's time to ``stage_time``."""
    start = time.perf_counter()
    for path in files:
        results = dict(img_path=path)
        for transform in transforms:
            t0 = time.perf_counter()
            results = transform(results)
            stage_time[type(transform).__name__] += time.perf_counter() - t0
    return time.perf_counter() - start


def benchmark(files: List[str], rounds: int, names: List[str] = None) -> Dict[str, dict]:
    pipelines = {n: [TRANSFORMS.build(t) for t in p] for n, p in entries().items() if not names or n in names}
    order = list(pipelines)
    rates: Dict[str, List[float]] = defaultdict(list)
    stages: Dict[str, Dict[str, float]] = {n: defaultdict(float) for n in order}
    for name in order:  # warm-up: file cache, lazy imports, torch kernels
        run_once(pipelines[name], files[:4], defaultdict(float))
    for r in range(rounds):
        for name in order[r % len(order):] + order[:r % len(order)]:
            rates[name].append(len(files) / run_once(pipelines[name], files, stages[name]))
    base = rates.get('mae-224')
    report = {}
    for name in order:
        per_stage = defaultdict(float)
        for transform, seconds in stages[name].items():
            per_stage[STAGES.get(transform, transform)] += 1e3 * seconds / (rounds * len(files))
        report[name] = dict(
            images_per_s_per_core=statistics.median(rates[name]),
            ratio_to_mae=statistics.median(a / b for a, b in zip(rates[name], base)) if base else None,
            ms_per_image=dict(per_stage))
    return report


def print_report(report: Dict[str, dict], n_files: int, rounds: int) -> None:
    print(f'{n_files} JPEGs (500 px long side, quality 90), {rounds} interleaved rounds, 1 thread')
    stage_names = ['decode', 'crop+resize+flip', 'pack']
    print(f'{"entry":22s} {"img/s/core":>10s} {"vs mae-224":>10s}  ' + '  '.join(f'{s:>16s}' for s in stage_names)
          + '   (ms/img)')
    for name, row in report.items():
        ratio = f'{row["ratio_to_mae"]:.2f}x' if row['ratio_to_mae'] else '-'
        stages = '  '.join(f'{row["ms_per_image"].get(s, 0.):16.2f}' for s in stage_names)
        print(f'{name:22s} {row["images_per_s_per_core"]:10.1f} {ratio:>10s}  {stages}')
    if 'maeplus-k4' in report and report['maeplus-k4']['ratio_to_mae']:
        ratio = report['maeplus-k4']['ratio_to_mae']
        print(f'target MAE+ 4x112 >= 1.0x MAE 224 per core: {ratio:.2f}x, {"met" if ratio >= 1 else "NOT met"}')
        exact = [n for n in report if n.startswith('maeplus-k4') and not n.endswith('-cv2')]  # antialiased
        best = max(exact, key=lambda n: report[n]['images_per_s_per_core'])
        for name in dict.fromkeys(['maeplus-k4', best]):
            rate = report[name]['images_per_s_per_core']
            print(f'cores one GPU needs at {GPU_RATE:.0f} images/s (no GPU measured) with {name}: '
                  f'{math.ceil(GPU_RATE / rate)}')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Data pipeline images/s per core: MAE+ vs MAE 224')
    parser.add_argument('--data', default=osp.join(REPO_ROOT, 'data', 'embedded'), help='photos to convert')
    parser.add_argument('--images', type=int, default=0, help='use at most this many photos (0: all)')
    parser.add_argument('--rounds', type=int, default=5, help='interleaved rounds over all files')
    parser.add_argument('--entries', nargs='+', help='run only these entries (mae-224 is the baseline)')
    parser.add_argument('--json', help='also write the report here')
    return parser.parse_args(argv)


def main(argv=None) -> Dict[str, dict]:
    args = parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    known = set(entries())
    unknown = sorted(set(args.entries or ()) - known)
    if unknown:
        raise SystemExit(f'unknown entries {unknown}; known: {sorted(known)}')
    with tempfile.TemporaryDirectory() as tmp:
        files = make_jpegs(args.data, tmp, limit=args.images)
        report = benchmark(files, args.rounds, args.entries)
    print_report(report, len(files), args.rounds)
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(dict(files=len(files), rounds=args.rounds, entries=report), f, indent=1)
    return report


if __name__ == '__main__':
    main()
