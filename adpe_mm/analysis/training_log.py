"""Scalar series from mmengine's json logs (``<work_dir>/<timestamp>/vis_data/scalars.json``)."""
import glob
import json
import os.path as osp
from typing import Dict, List, Tuple

Series = Tuple[List[int], List[float]]


def scalar_files(path: str) -> List[str]:
    """The json scalar logs of a work dir (all its runs, oldest first) or the single file ``path``.

    A resumed run writes a new ``<timestamp>`` folder; reading all of them in timestamp order gives the whole
    history. Training logs only: ``*.json`` under ``vis_data`` (``scalars.json`` and ``<timestamp>.json``
    hold the same lines, so ``scalars.json`` is used when present).
    """
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'no work dir or json log at {path}')
    files = sorted(glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json')))
    if not files:
        files = sorted(glob.glob(osp.join(path, '*', 'vis_data', '[0-9]*.json')))
    if not files:
        raise FileNotFoundError(f'no */vis_data/scalars.json under {path}: was it trained with mmengine?')
    return files


def read_scalars(path: str) -> Dict[str, Series]:
    """Every logged scalar of a run as ``name -> (steps, values)``, sorted by step.

    Lines are training iterations (``step`` = iteration). Lines with ``mode`` (val/test) are skipped; when a
    resumed run logs a step again, the later value wins.
    """
    by_step: Dict[str, Dict[int, float]] = {}
    for file in scalar_files(path):
        with open(file) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                record = json.loads(line)
                if 'mode' in record or 'step' not in record:
                    continue
                step = int(record['step'])
                for key, value in record.items():
                    if key in ('step', 'iter', 'epoch') or not isinstance(value, (int, float)):
                        continue
                    by_step.setdefault(key, {})[step] = float(value)
    return {key: (sorted(values), [values[s] for s in sorted(values)]) for key, values in by_step.items()}
