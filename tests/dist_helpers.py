"""Run a config through ``tools/dist_train.sh`` with N CPU (gloo) processes and collect every rank's final
model state (with :class:`probe_hooks.RankStateHook`)."""
import glob
import os.path as osp
import socket
from typing import Dict, List, Sequence

import torch
from mmengine.config import Config

from conftest import REPO_ROOT, run_tool, tool_env

TESTS_DIR = osp.dirname(osp.abspath(__file__))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def with_rank_states(config: str, out: str, changes: Dict[str, object] = None) -> str:
    """Dump ``config`` with ``changes`` merged in and the rank-state hook appended to ``out``; return ``out``."""
    cfg = Config.fromfile(config)
    if changes:
        cfg.merge_from_dict(changes)
    cfg.custom_imports = dict(imports=list(cfg.get('custom_imports', {}).get('imports', [])) + ['probe_hooks'],
                              allow_failed_imports=False)
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [dict(type='RankStateHook')]
    cfg.dump(out)
    return out


def dist_train(config: str, work_dir: str, nproc: int = 2, args: Sequence[str] = ()):
    """``bash tools/dist_train.sh config nproc --work-dir work_dir args``; returns (stdout, rank states)."""
    env = tool_env(PORT=str(free_port()))
    env['PYTHONPATH'] = TESTS_DIR + ':' + env['PYTHONPATH']
    proc = run_tool(['bash', osp.join(REPO_ROOT, 'tools', 'dist_train.sh'), config, str(nproc), '--work-dir',
                     work_dir, *args], cwd=osp.dirname(work_dir), env=env)
    states: List[dict] = [torch.load(osp.join(work_dir, f'rank{r}_state.pth'), weights_only=True)
                          for r in range(nproc)]
    return proc.stdout, states


def run_log(work_dir: str) -> str:
    """The text of the run's log file (``<work_dir>/<timestamp>/<timestamp>.log``)."""
    logs = glob.glob(osp.join(work_dir, '*', '*.log'))
    return open(logs[0]).read() if logs else ''


def differing_entries(states: List[dict]) -> List[str]:
    """Names of the state entries that are not bit-identical on every rank."""
    first = states[0]
    return [k for k in first if any(not torch.equal(first[k], s[k]) for s in states[1:])]
