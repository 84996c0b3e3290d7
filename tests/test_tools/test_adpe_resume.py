"""Resume of AdPE pretraining through tools/train.py continues bit-exactly (CPU)."""
import os.path as osp
import shutil
import sys

import pytest
import torch

import adpe_mm  # noqa: F401  (torch.load of runner checkpoints needs its allow-list)

from conftest import REPO_ROOT, run_tool

CONFIG = osp.join(REPO_ROOT, 'configs', 'adpe', 'tiny', 'adpe-rpe-coord_vit-tiny-p16_4x112-1xb8-300iter_embedded.py')
OPTIONS = [
    'train_cfg.max_iters=4', 'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
    'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
    'custom_hooks.0.interval=1000', 'param_scheduler.0.end=2', 'param_scheduler.1.begin=2',
    'param_scheduler.1.end=4', 'param_scheduler.1.T_max=2',
]


# the paper's parallel mode: persistent adversaries, the state a resume must restore (the tiny configs' own
# fresh adversaries keep none; their random starts follow the resumable counter instead)
PERSISTENT = ['model.adversary_fresh=None', 'model.adversary_steps=0']
FRESH_RANDOM = ["model.adversary_fresh='random'"]


def train(work_dir, data_root, *extra):
    run_tool([sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(work_dir), '--cfg-options', *OPTIONS,
              f'train_dataloader.dataset.data_root={data_root}', *extra], cwd=REPO_ROOT)


def tensors(obj, prefix=''):
    """Every tensor in a nested checkpoint structure, by path."""
    if isinstance(obj, torch.Tensor):
        return {prefix: obj}
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(tensors(v, f'{prefix}/{k}'))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(tensors(v, f'{prefix}/{i}'))
    return out


@pytest.mark.parametrize('adversaries', [PERSISTENT, FRESH_RANDOM], ids=['persistent', 'fresh-random'])
def test_resume_restores_adversaries_and_optimizer_and_continues_bit_exactly(adversaries, tmp_path, embedded_data):
    straight, resumed = tmp_path / 'straight', tmp_path / 'resumed'
    train(straight, embedded_data, *adversaries)
    resumed.mkdir()
    shutil.copy(straight / 'iter_2.pth', resumed / 'iter_2.pth')
    train(resumed, embedded_data, *adversaries, '--resume', str(resumed / 'iter_2.pth'))
    a = torch.load(straight / 'iter_4.pth')
    b = torch.load(resumed / 'iter_4.pth')
    assert a['meta']['iter'] == b['meta']['iter'] == 4
    sa, sb = tensors(a['state_dict']), tensors(b['state_dict'])
    advs = [k for k in sa if k.rsplit('.', 1)[-1].startswith('adv_')]
    assert len(advs) == 6  # 4 encoder + 2 decoder blocks with iRPE
    assert any(sa[k].abs().sum() > 0 for k in advs) == (adversaries is PERSISTENT)
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    oa, ob = tensors(a['optimizer']), tensors(b['optimizer'])
    assert oa.keys() == ob.keys() and len(oa) > 0
    for key in oa:
        assert torch.equal(oa[key], ob[key]), key
