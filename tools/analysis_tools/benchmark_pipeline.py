#!/usr/bin/env python
r"""Images per second per CPU core of the training data pipelines of MAE / MAE+ configs, and where the time goes.

The data-side sibling of ``benchmark_pretrain.py`` (same ENTRY syntax, config loading and table code)::

    CONFIG[:KEY=VALUE,...]

with three tool keys: ``name=LABEL``, ``crops=K`` (sets ``num_crops`` of the pipeline's ``MultiCrop``) and
``multicrop=dict(...)`` (more ``MultiCrop`` arguments, e.g. ``dict(backend='pillow')``; with
``reduced_decode`` the ``LoadImageFromFile`` before it is removed, since ``MultiCrop`` then decodes the file
itself). Without entries the tool runs its default set: stock mmpretrain MAE's 224 pipeline (the baseline)
and MAE+ at k = 1, 2, 4 with the default pipeline, then the resize kernels and reduced decoding at k = 4.

Input: JPEGs of ImageNet-like size and quality made at start from the photographs under ``--photos``
(default: the embedded set, ``data/embedded/train``): longer side ``--side`` px (500: 500x375 for a 4:3
photo), quality ``--quality`` (90), written to a temporary folder that is deleted at exit. Every entry runs
on the same files, as the dataset would call it (``dict(img_path=...)`` -> the train pipeline of the config).

Timing: one process, one thread (``OMP_NUM_THREADS=1``, torch and OpenCV single-threaded), i.e. one
data-loader worker on one core. A round runs every entry once over all ``--images`` files, in an order that
rotates every round, so a shared machine's drift hits all entries alike. Reported per entry: images/s
(median over rounds), its ratio to the baseline (and the median of the per-round ratios, ``paired``), the
cores one GPU needs at ``--gpu-rate`` images/s, and ms per image in each stage: ``decode`` (file read + JPEG
decode: ``LoadImageFromFile``, or ``MultiCrop``'s own with reduced decoding), ``crop+resize``
(``RandomResizedCrop``, or ``MultiCrop``'s resized crops), ``flip``, ``pack`` (``PackInputs``) and
``other`` (the rest: box sampling, dict handling); with reduced decoding also the share of images decoded at
a reduced size (``reduced %``).

Example (the table of docs/benchmarks.md)::

    python tools/analysis_tools/benchmark_pipeline.py --images 200 --rounds 7 --json work_dirs/bench/pipeline.json
"""
import argparse
import glob
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from typing import Any, Callable, Dict, List, Sequence

os.environ.setdefault('OMP_NUM_THREADS', '1')  # before torch is imported: one worker = one core
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_pretrain import (Entry, _iqr_pct, baseline_index, format_table, load_config, machine_description,  # noqa: E402
                                parse_entry)

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MAE = 'configs/mae/mae_vit-base-p16_8xb128-accum4-amp-coslr-400e_in1k.py'
MAE_PLUS = 'configs/mae_plus/maeplus_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py'
# (name, config, crops, MultiCrop arguments)
DEFAULT_ENTRIES = (
    ('mae-224', MAE, None, {}),
    ('maeplus-1x112', MAE_PLUS, 1, {}),
    ('maeplus-2x112', MAE_PLUS, 2, {}),
    ('maeplus-4x112', MAE_PLUS, 4, {}),
    ('4x112-pillow', MAE_PLUS, 4, dict(backend='pillow')),
    ('4x112-cv2-aliased', MAE_PLUS, 4, dict(backend='cv2')),
    ('4x112-reduced', MAE_PLUS, 4, dict(reduced_decode=True)),
    ('4x112-reduced-gap2', MAE_PLUS, 4, dict(reduced_decode=2.0)),
    ('1x112-reduced', MAE_PLUS, 1, dict(reduced_decode=True)),
)
# stage of each top-level transform; MultiCrop's stages are its methods
TRANSFORM_STAGES = {'LoadImageFromFile': 'decode', 'RandomResizedCrop': 'crop+resize', 'RandomFlip': 'flip',
                    'PackInputs': 'pack'}
MULTICROP_STAGES = {'_decode': 'decode', '_resized_crop': 'crop+resize', '_flip': 'flip'}
STAGES = ('decode', 'crop+resize', 'flip', 'pack', 'other')
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp')

# ------------------------------------------------------------------------------------------------- input


def make_jpegs(photos: str, out_dir: str, side: int = 500, quality: int = 90) -> List[str]:
    """One JPEG per photograph under ``photos``: RGB, longer side ``side`` px (bicubic), ``quality``."""
    from PIL import Image
    sources = sorted(f for f in glob.glob(osp.join(photos, '**', '*'), recursive=True)
                     if f.lower().endswith(IMAGE_EXTENSIONS))
    if not sources:
        raise SystemExit(f'--photos {photos!r} holds no images (make the embedded set with '
                         'tools/data/build_embedded_data.py)')
    paths = []
    for i, src in enumerate(sources):
        with Image.open(src) as im:
            im = im.convert('RGB')
            s = side / max(im.size)
            im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.BICUBIC)
            paths.append(osp.join(out_dir, f'{i:05d}.jpg'))
            im.save(paths[-1], quality=quality)
    return paths


def describe_jpegs(paths: Sequence[str]) -> Dict[str, Any]:
    from PIL import Image
    sizes = [Image.open(p).size for p in paths]
    return dict(files=len(paths), mean_width=statistics.mean(w for w, _ in sizes),
                mean_height=statistics.mean(h for _, h in sizes),
                mean_kib=statistics.mean(osp.getsize(p) for p in paths) / 1024)

# ------------------------------------------------------------------------------------------------ pipeline


def entry_pipeline(entry: Entry) -> List[dict]:
    """The train pipeline of the entry's config, with its ``crops`` and ``multicrop`` tool keys applied."""
    options = dict(entry.options)
    multicrop = dict(options.pop('multicrop', None) or {})
    cfg, _ = load_config(entry._replace(options=options))
    pipeline = [dict(t) for t in cfg.train_dataloader.dataset.pipeline]
    index = next((i for i, t in enumerate(pipeline) if t.get('type') == 'MultiCrop'), None)
    if index is None:
        if entry.crops is not None or multicrop:
            raise SystemExit(f'entry {entry.name!r}: crops= / multicrop= need a MultiCrop in the train pipeline')
        return pipeline
    pipeline[index].update(multicrop)
    if entry.crops is not None:
        pipeline[index]['num_crops'] = entry.crops
    if pipeline[index].get('reduced_decode') and index > 0 and pipeline[index - 1]['type'] == 'LoadImageFromFile':
        del pipeline[index - 1]
    return pipeline


class StageTimer:
    """Seconds per stage, accumulated by wrapping transform methods."""

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = defaultdict(float)

    def wrap(self, obj: Any, attr: str, stage: str) -> None:
        fn = getattr(obj, attr)
        seconds = self.seconds

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[stage] += time.perf_counter() - t0

        setattr(obj, attr, timed)


class PipelineBenchmark:
    """One entry: its built transforms with stage timers."""

    def __init__(self, entry: Entry) -> None:
        from mmpretrain.registry import TRANSFORMS
        self.name = entry.name
        self.pipeline_cfg = entry_pipeline(entry)
        self.transforms = [TRANSFORMS.build(t) for t in self.pipeline_cfg]
        self.timer = StageTimer()
        self.crops = None
        for t in self.transforms:
            kind = type(t).__name__
            if kind == 'MultiCrop':
                self.crops = t.num_crops
                self._count_reduced_decodes(t)
                for attr, stage in MULTICROP_STAGES.items():
                    self.timer.wrap(t, attr, stage)
            else:
                self.timer.wrap(t, 'transform', TRANSFORM_STAGES.get(kind, kind))

    def _count_reduced_decodes(self, multi_crop: Any) -> None:
        decode = multi_crop._decode

        def counted(img_bytes, scale, full_size):
            self.reduced += scale > 1
            return decode(img_bytes, scale, full_size)

        multi_crop._decode = counted
        self.reduced = 0

    def run(self, paths: Sequence[str]) -> Dict[str, Any]:
        """One pass over ``paths``: wall seconds and seconds per stage."""
        self.timer.seconds.clear()
        self.reduced = 0
        t0 = time.perf_counter()
        for i, path in enumerate(paths):
            results = dict(img_path=path, sample_idx=i)
            for t in self.transforms:
                results = t(results)
        total = time.perf_counter() - t0
        stages = dict(self.timer.seconds)
        stages['other'] = total - sum(stages.values())
        return dict(seconds=total, stages=stages, reduced=self.reduced)


def run_rounds(benches: List[PipelineBenchmark], paths: Sequence[str], rounds: int, warmup: int,
               log: Callable = print) -> List[List[dict]]:
    """``warmup`` + ``rounds`` rounds over all entries, the start rotating every round; the timed ones."""
    timed = [[] for _ in benches]
    for r in range(warmup + rounds):
        for i in [(r + j) % len(benches) for j in range(len(benches))]:
            measured = benches[i].run(paths)
            if r >= warmup:
                timed[i].append(measured)
        if r >= warmup:
            log(f'round {r - warmup + 1}/{rounds}')
    return timed


def summarize(benches: List[PipelineBenchmark], timed: List[List[dict]], images: int, baseline: int,
              gpu_rate: float) -> List[dict]:
    """Per entry: images/s per core, ratios to ``baseline``, cores per GPU and ms/img per stage."""
    base_rates = [images / m['seconds'] for m in timed[baseline]]
    rows = []
    for bench, measured in zip(benches, timed):
        rates = [images / m['seconds'] for m in measured]
        rate = statistics.median(rates)
        per_stage = {s: 1e3 * statistics.mean(m['stages'].get(s, 0.) for m in measured) / images for s in STAGES}
        extra = sorted({s for m in measured for s in m['stages']} - set(STAGES))
        for s in extra:  # transforms without a stage of their own, under their class name
            per_stage[s] = 1e3 * statistics.mean(m['stages'].get(s, 0.) for m in measured) / images
        decoded_here = any(t.get('reduced_decode') for t in bench.pipeline_cfg)
        reduced_pct = 100. * sum(m['reduced'] for m in measured) / (images * len(measured)) if decoded_here else None
        rows.append(dict(name=bench.name, crops=bench.crops or 1, images_per_s=rate, reduced_pct=reduced_pct,
                         crops_per_s=rate * (bench.crops or 1), iqr_pct=_iqr_pct([1 / r for r in rates]),
                         ms_per_image=1e3 / rate, stage_ms_per_image=per_stage,
                         cores_per_gpu=gpu_rate / rate, pipeline=bench.pipeline_cfg,
                         rounds=[m['seconds'] for m in measured]))
        row = rows[-1]
        for stage, ms in per_stage.items():
            row[f'{stage}_ms'] = ms
    base = rows[baseline]['images_per_s']
    for row, measured in zip(rows, timed):
        row['ratio'] = row['images_per_s'] / base
        row['ratio_paired'] = statistics.median(
            (images / m['seconds']) / b for m, b in zip(measured, base_rates))
    return rows


def columns(rows: List[dict]):
    stage_keys = [k for k in rows[0]['stage_ms_per_image']]
    return ((('pipeline', 'name', '{}'), ('crops', 'crops', '{}'), ('img/s/core', 'images_per_s', '{:.0f}'),
             ('IQR %', 'iqr_pct', '{:.0f}'), ('ratio', 'ratio', '{:.2f}'), ('paired', 'ratio_paired', '{:.2f}'),
             ('ms/img', 'ms_per_image', '{:.2f}'))
            + tuple((f'{s} ms', f'{s}_ms', '{:.2f}') for s in stage_keys)
            + (('reduced %', 'reduced_pct', '{:.0f}'), ('cores/GPU', 'cores_per_gpu', '{:.1f}')))


def targets(rows: List[dict], baseline: int, gpu_rate: float) -> List[dict]:
    """The issue's target (every k = 4 MAE+ entry >= 1.0x the baseline) and the cores one GPU needs."""
    out = []
    for row in rows:
        if row['crops'] == 4:
            out.append(dict(target=f"{row['name']} / {rows[baseline]['name']} images/s per core >= 1.0",
                            measured=row['ratio'], met=row['ratio'] >= 1.0))
    for row in rows:
        out.append(dict(target=f"cores per GPU at {gpu_rate:.0f} images/s: {row['name']}",
                        measured=row['cores_per_gpu'], met=None))
    return out

# ---------------------------------------------------------------------------------------------------- main


def default_entries() -> List[Entry]:
    return [Entry(name, osp.join(REPO_ROOT, config), dict(multicrop=mc) if mc else {}, crops)
            for name, config, crops, mc in DEFAULT_ENTRIES]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Images/s per CPU core of training pipelines on ImageNet-like JPEGs, interleaved over '
        'configs. ENTRY = CONFIG[:KEY=VALUE,...]; see the module docstring.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('entries', nargs='*', metavar='ENTRY', help='default: the set in the module docstring')
    parser.add_argument('--baseline', default='0', help='name or index of the entry the ratios refer to')
    parser.add_argument('--photos', default=osp.join(REPO_ROOT, 'data', 'embedded', 'train'))
    parser.add_argument('--images', type=int, default=200, help='images per round (the JPEGs, cycled)')
    parser.add_argument('--rounds', type=int, default=5, help='timed rounds')
    parser.add_argument('--warmup', type=int, default=1, help='untimed rounds first')
    parser.add_argument('--side', type=int, default=500, help='longer side of the JPEGs in pixels')
    parser.add_argument('--quality', type=int, default=90, help='JPEG quality')
    parser.add_argument('--gpu-rate', type=float, default=1000., help='images/s one GPU consumes')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default=None, metavar='OUT', help='write machine, settings and results')
    args = parser.parse_args(argv)
    if args.images < 1 or args.rounds < 1 or args.warmup < 0 or args.side < 16 or not 1 <= args.quality <= 100:
        parser.error('--images, --rounds >= 1, --warmup >= 0, --side >= 16, 1 <= --quality <= 100')
    return args


def main(argv=None) -> List[dict]:
    args = parse_args(argv)
    import cv2
    import numpy as np
    import torch
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    np.random.seed(args.seed)
    entries = [parse_entry(e) for e in args.entries] if args.entries else default_entries()
    baseline = baseline_index(entries, args.baseline)
    names = [e.name for e in entries]
    benches = [PipelineBenchmark(e) for e in entries]
    for b in benches:
        print(f"{b.name}: {' -> '.join(str(t) for t in b.transforms)}")
    with tempfile.TemporaryDirectory(prefix='adpe_pipeline_') as tmp:
        jpegs = make_jpegs(args.photos, tmp, args.side, args.quality)
        images = describe_jpegs(jpegs)
        paths = [jpegs[i % len(jpegs)] for i in range(args.images)]
        print(f"{images['files']} JPEGs, mean {images['mean_width']:.0f}x{images['mean_height']:.0f} px, "
              f"{images['mean_kib']:.0f} KiB (quality {args.quality}); {args.images} images per round")
        timed = run_rounds(benches, paths, args.rounds, args.warmup)
    rows = summarize(benches, timed, args.images, baseline, args.gpu_rate)
    goals = targets(rows, baseline, args.gpu_rate)
    machine = machine_description('cpu', 1)
    print(f"\n{machine['cpu']}, {machine['cpu_count']} CPUs, one process and one thread; median of "
          f"{args.rounds} rounds of {args.images} images after {args.warmup} warm-up; baseline {names[baseline]!r}")
    print(format_table(rows, columns(rows)))
    print('\ntargets:')
    for g in goals:
        verdict = '' if g['met'] is None else (' (met)' if g['met'] else ' (NOT met)')
        print(f"  {g['target']}: {g['measured']:.2f}{verdict}")
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(dict(machine=machine, command=sys.argv, settings=dict(vars(args)), images=images,
                           baseline=names[baseline], rows=rows, targets=goals), f, indent=1, default=str)
    return rows


if __name__ == '__main__':
    main()
