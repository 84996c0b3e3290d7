"""The Fashion-MNIST study script: idx reader, crop shapes, an end-to-end micro run on synthetic data."""
import gzip
import importlib.util
import json
import os.path as osp
import struct

import numpy as np
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_spec = importlib.util.spec_from_file_location('fashion_mnist_study',
                                               osp.join(ROOT, 'tools', 'study', 'fashion_mnist_study.py'))
study = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(study)


def _write_idx(path, arr, code):
    header = bytes([0, 0, code, arr.ndim]) + b''.join(struct.pack('>I', d) for d in arr.shape)
    with gzip.open(path, 'wb') as f:
        f.write(header + arr.tobytes())


def test_read_idx(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    _write_idx(str(tmp_path / 'img.gz'), images, 0x08)
    _write_idx(str(tmp_path / 'lab.gz'), labels, 0x08)
    np.testing.assert_array_equal(study.read_idx(str(tmp_path / 'img.gz')), images)
    np.testing.assert_array_equal(study.read_idx(str(tmp_path / 'lab.gz')), labels)


def test_crop_and_upsample_shapes():
    x = study.to_tensor(np.zeros((5, 28, 28), np.uint8) + 10, mean=10., std=2.)
    assert x.shape == (5, 3, 28, 28) and float(x.abs().max()) == 0.
    assert study.upsample(x).shape == (5, 3, study.IMG, study.IMG)
    g = torch.Generator().manual_seed(0)
    assert study.random_resized_crops(x, study.CROP, g).shape == (5, 3, study.CROP, study.CROP)
    assert study.random_resized_crops(x, study.IMG, g).shape == (5, 3, study.IMG, study.IMG)
    # a crop of scale 1 without flip is the (resampled) image itself
    ramp = torch.linspace(-1, 1, 28).expand(1, 3, 28, 28).contiguous()
    same = study.random_resized_crops(ramp, 28, g, scale=(1., 1.), ratio=(1., 1.), flip=False)
    torch.testing.assert_close(same, ramp, atol=1e-5, rtol=0)


def test_micro_run_synthetic(tmp_path):
    out = str(tmp_path / 'study')
    args = ['--synthetic', '--methods', 'mae', 'adpe_ape_coord', '--seeds', '0', '--out', out,
            '--pretrain-images', '128', '--pretrain-epochs', '1', '--batch-size', '32', '--probe-images', '128',
            '--finetune-images', '64', '--finetune-epochs', '1', '--test-images', '64', '--attn-images', '8']
    agg = study.main(args)
    assert set(agg) == {'mae', 'adpe_ape_coord'}
    with open(osp.join(out, 'runs', 'adpe_ape_coord_s0.json')) as f:
        rec = json.load(f)
    assert rec['synthetic_data'] and rec['pretrain_images_seen'] == 128
    assert len(rec['attention_distance']) == study.ARCH['num_layers']
    assert rec['adv_gap_curve'] and 0 <= rec['linear_probe_acc'] <= 1
    # the adversary stays in its l2 ball
    assert rec['adversaries_final']['backbone.adv_coord']['norm'] <= 3. + 1e-4
    for name in ('aggregate.json', 'table.md', 'accuracy.png', 'attention_distance.png', 'pretrain_loss.png'):
        assert osp.exists(osp.join(out, name))
    # finished runs are skipped on a second call
    study.main(args)
