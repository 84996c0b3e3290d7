"""One process of the 2-process gloo DDP check of AdPE training (spawned by test_adpe_ddp.py)."""
import os

import torch
import torch.distributed as dist
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from _tiny import ADVERSARIES, randomise_tables, tiny_mae_plus

GLOBAL_BATCH = 4
STEPS = 3
OPTIM = dict(
    type='AdvOptimWrapper',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'adv_': dict(decay_mult=0., maximize=True, lr_mult=20.)}))


def run(rank: int, world: int, port: int, out_dir: str, mode: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group('gloo', rank=rank, world_size=world)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(0)  # the same initial model everywhere
        # 'ape-coord+seq': sequential mode, 2 inner steps; '+fresh': a fresh attack of 2 steps every iteration;
        # '+fresh-ps': the same with one shift per crop
        mode, _, variant = mode.partition('+')
        sequential = variant == 'seq'
        model = tiny_mae_plus(ADVERSARIES[mode], adversary_steps=2 if variant else 0,
                              adversary_fresh='zero' if variant.startswith('fresh') else None,
                              adversary_per_sample=variant == 'fresh-ps')
        randomise_tables(model)
        g = torch.Generator().manual_seed(1)
        images = torch.rand(STEPS, GLOBAL_BATCH, 3, 112, 112, generator=g) * 255
        masks = torch.stack([model.backbone.random_masking(GLOBAL_BATCH, torch.device('cpu'), g)
                             for _ in range(STEPS)])
        local = slice(rank * GLOBAL_BATCH // world, (rank + 1) * GLOBAL_BATCH // world)
        step = {'i': 0}
        model.draw_mask = lambda b, device: masks[step['i'], local]  # this rank's share of the global masks
        optim = OPTIM
        if sequential:  # the inner loop alone moves the adversaries
            optim = dict(OPTIM, paramwise_cfg=dict(custom_keys={'adv_': dict(decay_mult=0., maximize=True,
                                                                              lr_mult=0.)}))
        wrapper = build_optim_wrapper(model, optim)
        runner_model = MMDistributedDataParallel(model, device_ids=None) if world > 1 else model
        for i in range(STEPS):
            step['i'] = i
            runner_model.train_step(dict(inputs=[images[i, local]], data_samples=None), wrapper)
    state = {k: v for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
    torch.save(state, os.path.join(out_dir, f'world{world}_rank{rank}.pth'))
    if world > 1:
        dist.destroy_process_group()
