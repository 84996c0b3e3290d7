"""check_data_roots: the COCO and ADE20K configs without their data stop before the runner builds, with an
error that lists each missing path with its config key, the expected layout and docs/transfer.md; with the
layout in place they pass; loops that are off are not checked."""
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from adpe_mm.utils import DataRootError, check_data_roots, missing_data_paths
from conftest import REPO_ROOT, tool_env

COCO = osp.join(REPO_ROOT, 'configs', 'det', 'mask-rcnn_plain-vit-b-p16_simple-fpn_8xb8-lsj-100e_coco.py')
ADE = osp.join(REPO_ROOT, 'configs', 'seg', 'upernet_plain-vit-b-p16_8xb2-160k_ade20k-512x512.py')


def _pointed_at(config: str, root: str) -> Config:
    """``config`` with every dataloader's data_root (and the COCO evaluators' ann_file) under ``root``."""
    cfg = Config.fromfile(config)
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = root
        evaluator = cfg.get(f'{split}_evaluator')
        if evaluator and 'ann_file' in evaluator:
            evaluator.ann_file = osp.join(root, 'annotations', 'instances_val2017.json')
    return cfg


def _touch(root: str, *paths: str) -> None:
    for path in paths:
        full = osp.join(root, path)
        if path.endswith('/'):
            os.makedirs(full, exist_ok=True)
        else:
            os.makedirs(osp.dirname(full), exist_ok=True)
            open(full, 'w').close()


def test_coco_without_data_lists_every_missing_path(tmp_path):
    root = str(tmp_path / 'coco')
    with pytest.raises(DataRootError) as err:
        check_data_roots(_pointed_at(COCO, root))
    message = str(err.value)
    for key, path in [('train_dataloader.dataset.ann_file', 'annotations/instances_train2017.json'),
                      ('train_dataloader.dataset.data_prefix.img', 'train2017'),
                      ('val_dataloader.dataset.ann_file', 'annotations/instances_val2017.json'),
                      ('val_evaluator.ann_file', 'annotations/instances_val2017.json')]:
        assert f'{key} -> {osp.join(root, path)}' in message, (key, message)
    assert 'CocoDataset: data/coco/' in message and 'docs/transfer.md' in message


def test_coco_with_its_layout_passes(tmp_path):
    root = str(tmp_path / 'coco')
    _touch(root, 'train2017/', 'val2017/', 'annotations/instances_train2017.json',
           'annotations/instances_val2017.json')
    cfg = _pointed_at(COCO, root)
    assert missing_data_paths(cfg) == []
    check_data_roots(cfg)


def test_ade20k_without_annotations_names_them(tmp_path):
    root = str(tmp_path / 'ade')
    _touch(root, 'images/training/', 'images/validation/')
    with pytest.raises(DataRootError) as err:
        check_data_roots(_pointed_at(ADE, root), ('train', 'val'))
    message = str(err.value)
    assert f'train_dataloader.dataset.data_prefix.seg_map_path -> {root}/annotations/training' in message
    assert f'{root}/annotations/validation' in message
    assert f'{root}/images/training does not exist' not in message  # only what is missing
    assert 'ADE20KDataset: data/ade/ADEChallengeData2016/' in message


def test_a_loop_that_is_off_is_not_checked(tmp_path):
    root = str(tmp_path / 'coco')
    _touch(root, 'train2017/', 'annotations/instances_train2017.json')
    cfg = _pointed_at(COCO, root)
    assert [k for k, _, _ in missing_data_paths(cfg, ('train', ))] == []
    cfg.val_cfg = None  # what --no-validate does
    assert [k for k, _, _ in missing_data_paths(cfg, ('train', 'val'))] == []
    with pytest.raises(ValueError, match="'bogus'"):
        missing_data_paths(cfg, ('bogus', ))


def test_train_py_stops_before_building_with_the_message(tmp_path):
    proc = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', 'train.py'), COCO, '--work-dir',
                           str(tmp_path / 'w')], cwd=str(tmp_path), env=tool_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=300)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.startswith('tools/train.py: error: the data this config reads is missing')
    assert 'data/coco/annotations/instances_train2017.json does not exist' in proc.stderr
    assert not (tmp_path / 'w').exists()  # nothing was built or written
