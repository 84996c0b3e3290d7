"""The README's main job and the tiny AdPE configs run through tools/train.py on the embedded photos."""
import glob
import json
import os.path as osp
import sys

import cv2
import pytest

from conftest import REPO_ROOT, run_tool

MAIN_JOB = 'configs/mae_plus/maeplus_vit-tiny-p16_4x112-1xb8-300iter_embedded.py'
TINY = [MAIN_JOB] + sorted(osp.relpath(p, REPO_ROOT) for p in glob.glob(osp.join(REPO_ROOT, 'configs/adpe/tiny/*.py')))


@pytest.mark.parametrize('config', TINY, ids=osp.basename)
def test_tiny_config_trains_and_writes_reconstructions(config, tmp_path, embedded_data):
    run_tool([sys.executable, 'tools/train.py', config, '--work-dir', str(tmp_path), '--cfg-options',
              'train_cfg.max_iters=3', 'default_hooks.checkpoint.interval=3', 'default_hooks.logger.interval=1',
              'custom_hooks.0.interval=3', 'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
              'train_dataloader.persistent_workers=False', f'train_dataloader.dataset.data_root={embedded_data}'],
             cwd=REPO_ROOT)
    assert osp.exists(tmp_path / 'iter_3.pth')
    panel = cv2.imread(str(tmp_path / 'reconstructions' / 'iter_3.png'))
    assert panel is not None and panel.shape == (4 * 112, 4 * 112, 3) and panel.std() > 1
    logs = [json.loads(line) for p in glob.glob(str(tmp_path / '*' / 'vis_data' / 'scalars.json'))
            for line in open(p)]
    assert len([r for r in logs if 'loss' in r]) == 3
    if '/adpe/' in config:  # the model logs its fresh attack's loss gain (>= 0 by construction) and size
        rows = [r for r in logs if 'loss' in r]
        assert all(r['adv_gap'] >= 0 and 'adv_attack_norm' in r and 'adv_norm' in r for r in rows), rows


def test_tensorboard_gets_the_loss_and_the_reconstruction_panels(tmp_path, embedded_data):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    run_tool([sys.executable, 'tools/train.py', MAIN_JOB, '--work-dir', str(tmp_path), '--tensorboard',
              '--cfg-options', 'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=2',
              'default_hooks.logger.interval=1', 'custom_hooks.0.interval=2', 'train_dataloader.batch_size=2',
              'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
              f'train_dataloader.dataset.data_root={embedded_data}'], cwd=REPO_ROOT)
    events = glob.glob(str(tmp_path / '*' / 'vis_data' / 'events.out.tfevents.*'))
    assert len(events) == 1
    acc = EventAccumulator(events[0], size_guidance={'images': 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars('loss')] == [1, 2]
    panels = acc.Images('reconstructions')
    assert [p.step for p in panels] == [2, 2]  # at the interval and after training
    assert (panels[0].width, panels[0].height) == (4 * 112, 4 * 112)
