#!/usr/bin/env python
r"""Cost of one pretraining step of MAE / MAE+ / AdPE configs: time per image, peak memory, FLOPs per image.

Every ENTRY is a config file, optionally followed by overrides::

    CONFIG[:KEY=VALUE,KEY=VALUE,...]

KEY is a dotted config path (as in ``--cfg-options``; list items by index, ``a.0.b``). VALUE is a Python
literal (``3``, ``1.9``, ``False``, ``None``, ``'ape'``, ``[1, 2]``, ``{'ratio': 1.9}``) or ``dict(k=v, ...)``;
anything else is a string. Commas inside brackets or quotes do not split. A dict VALUE is merged into a dict
already at KEY (``_delete_=True`` replaces it) and replaces anything else (e.g. ``model.adversary=None``).
Two keys belong to the tool: ``name=LABEL`` (default: the config's file stem) and ``crops=K`` (crops per
image; default: ``num_crops`` of the config's train pipeline, or one plain image tensor when there is none).

Each entry runs in its own worker process, spawned once and kept alive: all models are built, then the parent
asks the workers for one training step each, round-robin (the start rotates every round), so drift of a
shared machine hits every entry alike. One step = synthetic, already normalised crops on the device ->
``model.loss`` (inside ``optim_wrapper.optim_context``, i.e. under autocast with AMP) -> ``parse_losses`` ->
``optim_wrapper.update_params``. Reported per entry:

* ms/img: step time / images per step (``--batch-size``; an MAE+ image is ``crops`` crops), the median and
  the minimum over steps, and the forward+backward part of it (up to the optimizer's step pre-hook), i.e.
  without the optimizer update, whose cost does not depend on the images and is amortised over the global
  batch in real training; ratios to the ``--baseline`` entry, also as the median of per-round ratios;
* GFLOPs/img: forward multiply-adds per image (mmengine's convention: one multiply-add = one FLOP) of the
  patch embedding, every linear layer, the attention products and the iRPE lookups, from
  :func:`vit_mim_flops` (``--flops counter`` uses mmengine's ``FlopAnalyzer`` instead);
* peak mem: CUDA: ``torch.cuda.max_memory_allocated`` over warm-up and timed steps, reset after the model
  and optimizer are built (so it includes weights, gradients, optimizer state and activations).
  CPU: peak resident set size of the worker (``getrusage`` maxrss) minus its RSS right before the model was
  built: the same quantities plus allocator slack and lazily loaded kernels, a process-level upper bound.

Adaptations for benchmarking (printed per entry): ``accumulative_counts=1`` (every step updates);
on CPU, Amp wrappers become their plain version; on CUDA they stay, with ``--amp-dtype`` (``none`` switches
to the plain wrappers); a model with ``adv_`` parameters under a non-adversarial wrapper gets the matching
adversarial one and the ``adv_`` param group (``decay_mult=0, maximize=True``).

Example (ViT-B on a shared CPU: one thread per worker keeps other processes from stalling its barriers)::

    python tools/analysis_tools/benchmark_pretrain.py \
        configs/mae/mae_vit-base-p16_8xb128-accum4-amp-coslr-400e_in1k.py:name=mae-224 \
        "configs/mae_plus/maeplus_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py:name=ape-embed,\
model.adversary=dict(pe='ape',mode='embed',norm='l2',eps=3)" \
        --baseline mae-224 --batch-size 4 --steps 12 --warmup 2 --threads 1 --json work_dirs/bench.json

On one GPU every worker keeps its own CUDA context and caching allocator, so the entries' peaks add up:
keep their sum below the GPU's memory (or run fewer entries per call, with a shared baseline entry).
"""
import argparse
import ast
import json
import os
import os.path as osp
import statistics
import sys
import time
import traceback
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from adpe_mm.analysis.flops import (BlockSpec, RPESpec, block_flops, block_spec, counter_flops,  # noqa: F401
                                    model_flops, vit_mim_flops)

TOOL_KEYS = ('name', 'crops')
AMP_DTYPES = {'fp16': 'float16', 'bf16': 'bfloat16', 'none': None}
# A CPU-sized ViT (the repo's mae_plus_vit-tiny-p16 model) for tests and smoke runs.
TINY_ARCH = dict(encoder=dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512),
                 decoder=dict(decoder_embed_dim=64, decoder_depth=2, decoder_num_heads=4))

# ----------------------------------------------------------------------------------------------- entries


def split_top_level(text: str, sep: str = ',') -> List[str]:
    """Split at ``sep`` outside brackets and quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in '\'"':
            quote = ch
        elif ch in '([{':
            depth += 1
        elif ch in ')]}':
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _literal(node: ast.AST) -> Any:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'dict' \
            and not node.args:
        return {kw.arg: _literal(kw.value) for kw in node.keywords}
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    return ast.literal_eval(node)


def parse_value(text: str) -> Any:
    """A Python literal or ``dict(...)`` call; otherwise the text itself (a bare string)."""
    try:
        return _literal(ast.parse(text.strip(), mode='eval').body)
    except (ValueError, SyntaxError, TypeError):
        return text.strip()


def parse_options(items: Sequence[str]) -> Dict[str, Any]:
    options = {}
    for item in items:
        key, eq, value = item.partition('=')
        if not eq or not key.strip():
            raise ValueError(f'override {item!r} is not KEY=VALUE')
        options[key.strip()] = parse_value(value)
    return options


class Entry(NamedTuple):
    name: str
    config: str
    options: Dict[str, Any]  # config overrides
    crops: Optional[int]  # None: from the pipeline


def parse_entry(text: str) -> Entry:
    """``CONFIG[:KEY=VALUE,...]`` (see the module docstring) -> :class:`Entry`."""
    head, dot_py, tail = text.partition('.py')
    if not dot_py:
        raise ValueError(f'entry {text!r} does not name a .py config')
    if tail and not tail.startswith(':'):
        raise ValueError(f'entry {text!r}: expected ":" after the config path')
    config = head + dot_py
    options = parse_options(split_top_level(tail[1:])) if tail else {}
    name = str(options.pop('name', osp.splitext(osp.basename(config))[0]))
    crops = options.pop('crops', None)
    if crops is not None and (not isinstance(crops, int) or crops < 1):
        raise ValueError(f'entry {name!r}: crops must be a positive integer, got {crops!r}')
    if '::' not in config:
        if not osp.isfile(config):
            raise FileNotFoundError(f'entry {name!r}: config {config!r} not found')
        config = osp.abspath(config)
    return Entry(name, config, options, crops)


def set_option(cfg, key: str, value: Any) -> None:
    """Set dotted ``key`` of an mmengine Config; a dict value merges into a dict (unless ``_delete_``)."""
    from mmengine.config import ConfigDict
    parts = key.split('.')
    node = cfg
    for part in parts[:-1]:
        if isinstance(node, (list, tuple)):
            node = node[int(part)]
            continue
        if not isinstance(node.get(part), (dict, list, tuple)):
            node[part] = ConfigDict()
        node = node[part]
    leaf = int(parts[-1]) if isinstance(node, (list, tuple)) else parts[-1]
    old = node[leaf] if isinstance(node, (list, tuple)) else node.get(leaf)
    if isinstance(value, dict):
        value = dict(value)
        if isinstance(old, dict) and not value.pop('_delete_', False):
            cfg.merge_from_dict({key: value})
            return
        value = ConfigDict(value)
    node[leaf] = value


def arch_options(arch: str) -> Dict[str, Any]:
    """Overrides that set the encoder to ``arch`` (an mmpretrain ViT name, or 'tiny': encoder and decoder)."""
    if arch == 'tiny':
        enc = TINY_ARCH['encoder']
        return {'model.backbone.arch': dict(enc, _delete_=True), 'model.neck.embed_dim': enc['embed_dims'],
                **{f'model.neck.{k}': v for k, v in TINY_ARCH['decoder'].items()}}
    from mmpretrain.models import VisionTransformer
    if arch not in VisionTransformer.arch_zoo:
        raise ValueError(f'unknown --arch {arch!r}: use tiny or one of {sorted(VisionTransformer.arch_zoo)}')
    return {'model.backbone.arch': arch, 'model.neck.embed_dim': VisionTransformer.arch_zoo[arch]['embed_dims']}


def pipeline_crops(cfg) -> Optional[int]:
    """``num_crops`` of the first train-pipeline transform that has one (MAE+'s MultiCrop), else None."""
    pipeline = cfg.get('train_dataloader', {}).get('dataset', {}).get('pipeline', [])
    for transform in pipeline:
        if isinstance(transform, dict) and 'num_crops' in transform:
            return int(transform['num_crops'])
    return None


def adapt_optim_wrapper(ow_cfg: dict, device: str, amp_dtype: Optional[str], adversarial: bool) -> Tuple[dict, list]:
    """The config's optimizer wrapper as benchmarked (see the module docstring), and notes on what changed."""
    ow = dict(ow_cfg)
    notes = []
    kind = ow.get('type', 'OptimWrapper')
    known = ('OptimWrapper', 'AmpOptimWrapper', 'AdvOptimWrapper', 'AmpAdvOptimWrapper')
    if kind in known:
        amp = device == 'cuda' and amp_dtype is not None and 'Amp' in kind
        adv = adversarial or 'Adv' in kind
        new = ('Amp' if amp else '') + ('Adv' if adv else '') + 'OptimWrapper'
        if amp:
            ow['dtype'] = amp_dtype
            ow.setdefault('loss_scale', 'dynamic')
        else:
            for key in ('loss_scale', 'dtype', 'use_fsdp'):
                ow.pop(key, None)
        if new != kind:
            notes.append(f'{kind} -> {new}')
        ow['type'] = new
    else:
        notes.append(f'unknown wrapper {kind} kept as is')
    if adversarial:
        paramwise = dict(ow.get('paramwise_cfg') or {})
        keys = dict(paramwise.get('custom_keys') or {})
        if 'adv_' not in keys:
            keys['adv_'] = dict(decay_mult=0., maximize=True)
            notes.append("added param group 'adv_' (decay_mult=0, maximize=True)")
        paramwise['custom_keys'] = keys
        ow['paramwise_cfg'] = paramwise
    if ow.get('accumulative_counts', 1) != 1:
        notes.append(f"accumulative_counts {ow['accumulative_counts']} -> 1")
    ow['accumulative_counts'] = 1
    return ow, notes


def load_config(entry: Entry, arch: Optional[str] = None, cfg_options: Optional[dict] = None):
    """The entry's Config with its overrides applied (``arch``, then ``cfg_options``, then the entry's own),
    and the dict of all overrides; sets the config's default registry scope."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import adpe_mm  # noqa: F401  (registers the MAE+ / AdPE components)
    cfg = Config.fromfile(entry.config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    options = dict(arch_options(arch)) if arch else {}
    options.update(cfg_options or {})
    options.update(entry.options)
    for key, value in options.items():
        set_option(cfg, key, value)
    return cfg, options


def build_model(cfg):
    """``cfg.model`` built from mmpretrain's registry and initialised (on CPU)."""
    from mmpretrain.registry import MODELS
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model

# --------------------------------------------------------------------------------------------------- FLOPs
# (the formula and the counter live in adpe_mm.analysis.flops; imported in load_config's process)


# -------------------------------------------------------------------------------------------------- worker


def _rss_bytes() -> Optional[int]:
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError):
        return None


def _maxrss_bytes() -> int:
    import resource
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == 'darwin' else rss * 1024


class StepBenchmark:
    """One entry in its worker process: the built model, optimizer wrapper and synthetic crops."""

    def __init__(self, entry: Entry, settings: dict) -> None:
        import torch
        from mmengine.logging import MMLogger
        from mmengine.optim import build_optim_wrapper
        from mmpretrain.structures import DataSample
        MMLogger.get_instance('benchmark_pretrain', log_level='WARNING')  # no per-parameter init log
        self.device = torch.device(settings['device'])
        self.cuda = self.device.type == 'cuda'
        if settings.get('threads'):
            torch.set_num_threads(settings['threads'])
        torch.manual_seed(settings['seed'])
        cfg, options = load_config(entry, settings.get('arch'), settings.get('cfg_options'))
        crops = entry.crops if entry.crops is not None else pipeline_crops(cfg)
        size = cfg.model.backbone.get('img_size', 224)
        batch = settings['batch_size']

        rss_before = _rss_bytes() or _maxrss_bytes()
        self.model = build_model(cfg).to(self.device).train()
        adversarial = any(n.rsplit('.', 1)[-1].startswith('adv_') for n, _ in self.model.named_parameters())
        ow_cfg, self.notes = adapt_optim_wrapper(cfg.optim_wrapper.to_dict(), self.device.type,
                                                 settings['amp_dtype'], adversarial)
        self.optim_wrapper = build_optim_wrapper(self.model, ow_cfg)
        self.optim_wrapper.optimizer.register_step_pre_hook(self._before_optimizer_step)
        self._t_optimizer = None

        def make(n):  # normalised pixels, like the data preprocessor's output
            return torch.randn(n, 3, size, size, device=self.device)

        self.inputs = make(batch) if crops is None else [make(batch) for _ in range(crops)]
        self.data_samples = [DataSample() for _ in range(batch)]
        flops = model_flops(self.model)
        samples_per_image = crops or 1
        self.info = dict(
            name=entry.name, config=entry.config, options={k: repr(v) for k, v in options.items()},
            crops=crops, crop_size=size, images_per_step=batch, samples_per_step=batch * samples_per_image,
            optim_wrapper=ow_cfg['type'], notes=self.notes,
            params_m=sum(p.numel() for p in self.model.parameters()) / 1e6,
            flops_per_image={k: v * samples_per_image for k, v in flops.items()}, flops_source='formula')
        if settings.get('flops') == 'counter':
            one = make(1) if crops is None else [make(1) for _ in range(crops)]
            self.info['flops_formula_per_image'] = self.info['flops_per_image']['total']
            self.info['flops_per_image'] = dict(total=counter_flops(self.model, one, [DataSample()]))
            self.info['flops_source'] = 'mmengine FlopAnalyzer'
        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self.rss_before = rss_before

    def _sync(self) -> None:
        if self.cuda:
            import torch
            torch.cuda.synchronize(self.device)

    def _before_optimizer_step(self, optimizer, args, kwargs) -> None:
        self._sync()
        self._t_optimizer = time.perf_counter()

    def step(self) -> Dict[str, float]:
        """One training step; seconds of the whole step and of its parts."""
        self._sync()
        t0 = time.perf_counter()
        with self.optim_wrapper.optim_context(self.model):
            losses = self.model.loss(self.inputs, self.data_samples)
        loss, _ = self.model.parse_losses(losses)
        self._sync()
        t1 = time.perf_counter()
        self._t_optimizer = None
        self.optim_wrapper.update_params(loss)
        self._sync()
        t2 = time.perf_counter()
        t_opt = self._t_optimizer or t2  # a step skipped by the AMP scaler has no optimizer time
        return dict(step=t2 - t0, forward=t1 - t0, fwd_bwd=t_opt - t0, optimizer=t2 - t_opt)

    def peak_memory(self) -> Dict[str, Any]:
        if self.cuda:
            import torch
            return dict(bytes=int(torch.cuda.max_memory_allocated(self.device)),
                        kind='cuda max_memory_allocated (weights, grads, optimizer state, activations)')
        return dict(bytes=int(_maxrss_bytes() - self.rss_before),
                    kind='cpu peak RSS of the worker minus its RSS before the model was built')


def _worker_main(conn, entry: Entry, settings: dict) -> None:
    try:
        bench = StepBenchmark(entry, settings)
        conn.send(('ready', bench.info))
        while True:
            command, count = conn.recv()
            if command == 'steps':
                conn.send(('times', [bench.step() for _ in range(count)]))
            else:
                conn.send(('memory', bench.peak_memory()))
                return
    except Exception:  # reported by the parent with the entry's name
        conn.send(('error', traceback.format_exc()))

# -------------------------------------------------------------------------------------------------- parent


class Worker:

    def __init__(self, ctx, entry: Entry, settings: dict) -> None:
        self.entry = entry
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, entry, settings), daemon=True)
        self.process.start()
        child.close()

    def ask(self, command: str, count: int = 0) -> Any:
        self.conn.send((command, count))
        return self.receive()

    def receive(self) -> Any:
        while not self.conn.poll(1.0):
            if not self.process.is_alive():
                raise RuntimeError(f'worker of {self.entry.name!r} died (exit code {self.process.exitcode})')
        kind, payload = self.conn.recv()
        if kind == 'error':
            raise RuntimeError(f'entry {self.entry.name!r} failed:\n{payload}')
        return payload


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _iqr_pct(values: Sequence[float]) -> Optional[float]:
    """Interquartile range in % of the median (None below 4 values)."""
    if len(values) < 4:
        return None
    q = statistics.quantiles(values, n=4)
    return 100. * (q[2] - q[0]) / statistics.median(values)


def run_benchmark(entries: List[Entry], settings: dict, steps: int, warmup: int, log=print) -> List[dict]:
    """Build every entry in its own worker, then time ``steps`` round-robin rounds after ``warmup`` rounds."""
    import multiprocessing
    ctx = multiprocessing.get_context('spawn')
    workers = [Worker(ctx, e, settings) for e in entries]
    try:
        infos = [w.receive() for w in workers]
        for info in infos:
            log(f"built {info['name']}: {info['params_m']:.1f} M params, {info['crops'] or 1} x "
                f"{info['crop_size']} px per image, {info['optim_wrapper']}"
                + (f" ({'; '.join(info['notes'])})" if info['notes'] else ''))
        times = [[] for _ in workers]
        for r in range(warmup + steps):
            for i in [(r + j) % len(workers) for j in range(len(workers))]:
                measured = workers[i].ask('steps', 1)
                if r >= warmup:
                    times[i].extend(measured)
            if r >= warmup and ((r - warmup + 1) % max(1, steps // 5) == 0 or r == warmup + steps - 1):
                log(f'round {r - warmup + 1}/{steps}')
        results = []
        for worker, info, t in zip(workers, infos, times):
            results.append(dict(info, memory=worker.ask('memory'), steps=t))
    finally:
        for w in workers:
            w.process.join(timeout=30)
            if w.process.is_alive():
                w.process.terminate()
    return results


# value -> its ratio to the baseline's value
RATIOS = dict(ms_per_image='time_ratio', min_ms_per_image='min_time_ratio', fwd_bwd_ms_per_image='fwd_bwd_ratio',
              min_fwd_bwd_ms_per_image='min_fwd_bwd_ratio', gflops_per_image='flop_ratio', peak_mem_mib='mem_ratio')


def summarize(results: List[dict], baseline: int) -> List[dict]:
    """Per-entry times and ratios to ``results[baseline]`` (time, forward+backward, FLOPs, memory).

    Times are per image, as the median over steps and as the minimum (on a shared machine other processes
    only ever add time, so the minimum is the least disturbed step). ``time_ratio_paired`` is the median of
    the per-round ratios (the two steps of a round ran back to back), insensitive to slow drift.
    """
    rows = []
    for res in results:
        images = res['images_per_step']
        step = [s['step'] / images for s in res['steps']]
        fb = [s['fwd_bwd'] / images for s in res['steps']]
        rows.append(dict(
            name=res['name'], images_per_step=images, samples_per_step=res['samples_per_step'],
            ms_per_image=1e3 * _median(step), iqr_pct=_iqr_pct(step), min_ms_per_image=1e3 * min(step),
            fwd_bwd_ms_per_image=1e3 * _median(fb), min_fwd_bwd_ms_per_image=1e3 * min(fb),
            optimizer_ms_per_step=1e3 * _median([s['optimizer'] for s in res['steps']]),
            gflops_per_image=res['flops_per_image']['total'] / 1e9, peak_mem_mib=res['memory']['bytes'] / 2**20))
    base = rows[baseline]
    base_steps = [s['step'] / base['images_per_step'] for s in results[baseline]['steps']]
    for row, res in zip(rows, results):
        for key, ratio_key in RATIOS.items():
            row[ratio_key] = row[key] / base[key] if base[key] > 0 else None
        per_round = [s['step'] / row['images_per_step'] / b for s, b in zip(res['steps'], base_steps)]
        row['time_ratio_paired'] = _median(per_round)
    return rows


COLUMNS = (('config', 'name', '{}'), ('img/step', 'images_per_step', '{}'), ('crops/step', 'samples_per_step', '{}'),
           ('ms/img', 'ms_per_image', '{:.1f}'), ('IQR %', 'iqr_pct', '{:.0f}'),
           ('time ratio', 'time_ratio', '{:.3f}'), ('paired', 'time_ratio_paired', '{:.3f}'),
           ('min ms/img', 'min_ms_per_image', '{:.1f}'), ('min ratio', 'min_time_ratio', '{:.3f}'),
           ('fwd+bwd ms/img', 'fwd_bwd_ms_per_image', '{:.1f}'), ('fwd+bwd ratio', 'fwd_bwd_ratio', '{:.3f}'),
           ('min fwd+bwd ratio', 'min_fwd_bwd_ratio', '{:.3f}'),
           ('GFLOPs/img', 'gflops_per_image', '{:.2f}'), ('FLOP ratio', 'flop_ratio', '{:.3f}'),
           ('peak mem MiB', 'peak_mem_mib', '{:.0f}'), ('mem ratio', 'mem_ratio', '{:.2f}'))


def format_table(rows: List[dict], columns: Sequence[Tuple[str, str, str]] = COLUMNS) -> str:
    """A Markdown table of :func:`summarize`'s rows (``columns``: (header, row key, format) triples)."""
    header = [c[0] for c in columns]
    body = [['-' if row[key] is None else fmt.format(row[key]) for _, key, fmt in columns] for row in rows]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    lines = ['| ' + ' | '.join(c.ljust(w) for c, w in zip(r, widths)) + ' |' for r in [header] + body]
    lines.insert(1, '|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    return '\n'.join(lines)


def machine_description(device: str, threads: Optional[int] = None) -> Dict[str, Any]:
    import platform

    import torch
    desc = dict(torch=torch.__version__, python=platform.python_version(), device=device,
                threads_per_worker=threads or torch.get_num_threads(), cpu_count=os.cpu_count(),
                cpu=platform.processor())
    try:
        with open('/proc/cpuinfo') as f:
            names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
        desc['cpu'] = names[0] if names else desc['cpu']
    except OSError:
        pass
    if device == 'cuda' and torch.cuda.is_available():
        desc['gpu'] = torch.cuda.get_device_name(0)
    return desc


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Time per image, peak memory and FLOPs per image of pretraining steps, interleaved over '
        'configs. ENTRY = CONFIG[:KEY=VALUE,...]; see the module docstring.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('entries', nargs='+', metavar='ENTRY')
    parser.add_argument('--baseline', default='0', help='name or index of the entry the ratios refer to')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--amp-dtype', choices=tuple(AMP_DTYPES), default='fp16',
                        help='CUDA autocast dtype of Amp wrappers (none: fp32, plain wrappers)')
    parser.add_argument('--batch-size', type=int, default=4, help='images per step (an MAE+ image = k crops)')
    parser.add_argument('--steps', type=int, default=20, help='timed steps per entry (median)')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps per entry first')
    parser.add_argument('--arch', default=None,
                        help="encoder arch of every entry: an mmpretrain ViT name ('b', 'l', ...) or 'tiny' "
                        '(128-d x 4 encoder, 64-d x 2 decoder)')
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='overrides of every entry (applied before the entry\'s own)')
    parser.add_argument('--flops', choices=('formula', 'counter'), default='formula')
    parser.add_argument('--threads', type=int, default=None, help='torch threads per worker')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default=None, metavar='OUT', help='write machine, settings and results')
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1:
        parser.error('--steps and --batch-size must be >= 1, --warmup >= 0')
    return args


def baseline_index(entries: Sequence[Entry], baseline: str) -> int:
    """Index of ``--baseline`` (an entry name or an index) among ``entries``, whose names must be unique."""
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise SystemExit(f'entry names must be unique (add name=...): {names}')
    index = int(baseline) if baseline.isdigit() else (names.index(baseline) if baseline in names else None)
    if index is None or not 0 <= index < len(entries):
        raise SystemExit(f'--baseline {baseline!r} is neither an entry name {names} nor an index')
    return index


def main(argv=None) -> List[dict]:
    args = parse_args(argv)
    entries = [parse_entry(e) for e in args.entries]
    baseline = baseline_index(entries, args.baseline)
    names = [e.name for e in entries]
    if args.device == 'cuda':
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('--device cuda but torch sees no CUDA device')
    settings = dict(device=args.device, amp_dtype=AMP_DTYPES[args.amp_dtype], batch_size=args.batch_size,
                    arch=args.arch, cfg_options=parse_options(args.cfg_options), flops=args.flops,
                    threads=args.threads, seed=args.seed)
    results = run_benchmark(entries, settings, args.steps, args.warmup)
    rows = summarize(results, baseline)
    machine = machine_description(args.device, args.threads)
    print(f"\n{machine['cpu']}, {machine['cpu_count']} CPUs ({machine['threads_per_worker']} torch threads), "
          f"torch {machine['torch']}"
          + (f", {machine['gpu']}" if 'gpu' in machine else '')
          + f"; device {args.device}, {args.batch_size} images/step, median of {args.steps} steps after "
          f'{args.warmup} warm-up, baseline {names[baseline]!r}')
    print(format_table(rows))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(dict(machine=machine, command=sys.argv, settings=dict(vars(args)), baseline=names[baseline],
                           rows=rows, results=results), f, indent=1)
    return rows


if __name__ == '__main__':
    main()
