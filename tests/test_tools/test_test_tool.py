"""tools/test.py and tools/dist_test.sh evaluate a checkpoint written by tools/train.py."""
import os.path as osp
import pickle
import socket
import sys

import pytest

from conftest import REPO_ROOT, run_tool, tool_env

# A tiny ViT classifier on the labelled embedded photos (meta/train.txt), trained for 2 iterations only
# to have a runner checkpoint to evaluate.
CLASSIFIER_CONFIG = """
_base_ = [{runtime!r}]
num_classes = {num_classes}
model = dict(
    type='ImageClassifier',
    backbone=dict(type='VisionTransformer', img_size=96, patch_size=16,
                  arch=dict(embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=128)),
    head=dict(type='VisionTransformerClsHead', num_classes=num_classes, in_channels=64,
              loss=dict(type='CrossEntropyLoss')))
data_preprocessor = dict(num_classes=num_classes, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         to_rgb=True)
pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(96, 96)), dict(type='PackInputs')]
dataset = dict(type='CustomDataset', data_root={data_root!r}, ann_file='meta/train.txt', data_prefix='train',
               pipeline=pipeline)
train_dataloader = dict(batch_size=4, num_workers=0, sampler=dict(type='InfiniteSampler'), dataset=dataset)
test_dataloader = dict(batch_size=8, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                       dataset=dataset)
test_evaluator = dict(type='Accuracy', topk=(1, ))
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
                     logger=dict(type='LoggerHook', interval=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
"""


@pytest.fixture(scope='module')
def trained(tmp_path_factory, embedded_data):
    tmp = tmp_path_factory.mktemp('classifier')
    with open(osp.join(embedded_data, 'meta', 'classes.txt')) as f:
        num_classes = len(f.read().split())
    with open(osp.join(embedded_data, 'meta', 'train.txt')) as f:
        num_images = len(f.read().splitlines())
    config = tmp / 'vit-tiny_embedded_cls.py'
    config.write_text(CLASSIFIER_CONFIG.format(
        runtime=osp.join(REPO_ROOT, 'configs', '_base_', 'default_runtime.py'), num_classes=num_classes,
        data_root=embedded_data))
    run_tool([sys.executable, osp.join(REPO_ROOT, 'tools', 'train.py'), str(config), '--work-dir',
              str(tmp / 'train')], cwd=str(tmp))
    return dict(tmp=tmp, config=str(config), checkpoint=str(tmp / 'train' / 'iter_2.pth'), num_images=num_images)


def test_test_tool_reports_accuracy_and_dumps_every_prediction(trained):
    out = trained['tmp'] / 'preds.pkl'
    proc = run_tool([sys.executable, osp.join(REPO_ROOT, 'tools', 'test.py'), trained['config'],
                     trained['checkpoint'], '--work-dir', str(trained['tmp'] / 'test'), '--out', str(out)],
                    cwd=str(trained['tmp']))
    assert 'accuracy/top1' in proc.stdout
    with open(out, 'rb') as f:
        assert len(pickle.load(f)) == trained['num_images']


def test_dist_test_runs_two_gloo_processes(trained):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    proc = run_tool(['bash', osp.join(REPO_ROOT, 'tools', 'dist_test.sh'), trained['config'],
                     trained['checkpoint'], '2', '--work-dir', str(trained['tmp'] / 'dist_test')],
                    cwd=str(trained['tmp']), env=tool_env(PORT=str(port)))
    assert 'accuracy/top1' in proc.stdout
    assert 'GPU number: 2' in proc.stdout
