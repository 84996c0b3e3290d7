"""The Fashion-MNIST study script: idx reader, crop shapes, an end-to-end micro run on synthetic data."""
import gzip
import importlib.util
import json
import os
import os.path as osp
import struct

import numpy as np
import pytest
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


def test_micro_run_synthetic(tmp_path, monkeypatch):
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
    # a run whose json is gone is evaluated again from its saved pretrained model, with the same numbers
    assert osp.exists(osp.join(out, 'pretrained', 'adpe_ape_coord_s0.pth'))
    os.remove(osp.join(out, 'runs', 'adpe_ape_coord_s0.json'))
    study.main(args)
    with open(osp.join(out, 'runs', 'adpe_ape_coord_s0.json')) as f:
        again = json.load(f)
    for key in ('loss_curve', 'adv_gap_curve', 'linear_probe_acc', 'attention_distance', 'finetune_acc'):
        assert again[key] == rec[key], key
    assert not [n for n in os.listdir(osp.join(out, 'runs')) if n.endswith('.lock')]
    # --aggregate-only runs nothing, not even the data load, and leaves out the runs that are not there

    def no_data(*args, **kwargs):
        raise AssertionError('--aggregate-only loaded the data')

    monkeypatch.setattr(study, 'load_data', no_data)
    only = study.main(args + ['--aggregate-only', '--methods', 'mae', 'maeplus', 'adpe_ape_coord'])
    assert set(only) == {'mae', 'adpe_ape_coord'} and not osp.exists(osp.join(out, 'runs', 'maeplus_s0.json'))
    assert only['adpe_ape_coord']['finetune_acc'] == agg['adpe_ape_coord']['finetune_acc']


def test_claim_is_exclusive_and_released(tmp_path):
    lock = str(tmp_path / 'run.json.lock')
    with study.claim(lock) as first:
        assert first
        with study.claim(lock) as second:  # another open file description: refused while the first holds it
            assert not second
    with study.claim(lock) as third:
        assert third


def test_paired_difference_by_seed():
    runs = [dict(method='mae', seed=0, linear_probe_acc=0.80), dict(method='mae', seed=1, linear_probe_acc=0.70),
            dict(method='mae', seed=2, linear_probe_acc=0.75), dict(method='x', seed=0, linear_probe_acc=0.82),
            dict(method='x', seed=1, linear_probe_acc=0.71), dict(method='x', seed=2, linear_probe_acc=0.78),
            dict(method='x', seed=3, linear_probe_acc=0.99)]  # seed 3 has no baseline run: left out
    d = study.paired_difference(runs, 'x', 'mae', 'linear_probe_acc')
    # differences 0.02, 0.01, 0.03: mean 0.02, sample std 0.01, t(0.975, 2) = 4.3027
    assert d['n'] == 3
    np.testing.assert_allclose([d['mean'], d['std'], d['ci95']], [0.02, 0.01, 4.3027 * 0.01 / 3**0.5], atol=1e-4)
    assert study.paired_difference(runs, 'x', 'maeplus', 'linear_probe_acc') is None


def test_positional_attack_on_a_micro_run(tmp_path):
    spec = importlib.util.spec_from_file_location('positional_attack',
                                                  osp.join(ROOT, 'tools', 'study', 'positional_attack.py'))
    attack = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(attack)
    assert attack.attacks_for('mae') == [] and attack.attacks_for('maeplus') == ['ape_embed', 'ape_coord']
    assert attack.attacks_for('adpe_rpe_coord') == ['ape_embed', 'ape_coord', 'rpe_embed', 'rpe_coord',
                                                    'rpe_coord_fade']
    out = str(tmp_path / 'study')
    study.main(['--synthetic', '--methods', 'adpe_ape_coord', '--seeds', '0', '--out', out, '--pretrain-images',
                '128', '--pretrain-epochs', '1', '--batch-size', '32', '--probe-images', '64', '--finetune-images',
                '32', '--finetune-epochs', '1', '--test-images', '32', '--attn-images', '4'])
    summary = attack.main(['--synthetic', '--out', out, '--methods', 'adpe_ape_coord', '--seeds', '0',
                           '--images', '8', '--steps', '3'])
    with open(osp.join(out, 'attack', 'adpe_ape_coord_s0.json')) as f:
        rec = json.load(f)
    assert set(rec['attacks']) == {'ape_embed', 'ape_coord'}
    for name, a in rec['attacks'].items():
        eps = attack.ATTACKS[name]['eps']
        assert len(a['curve']) == 4 and a['curve'][0] == pytest.approx(a['clean'], abs=1e-6)  # starts at zero
        runs = a['curve'] + a.get('curve_from_trained', [])
        assert a['gap'] > 0 and a['attacked'] == max(runs)  # a fresh attack raises the loss
        assert all(n <= eps + 1e-4 for n in a['adversary_norms']) and max(a['adversary_norms']) > 0
    # only the mode it was trained against has a trained adversary to evaluate
    own = rec['attacks']['ape_coord']
    assert 'trained' not in rec['attacks']['ape_embed'] and len(own['curve_from_trained']) == 4
    assert own['trained'] == own['curve_from_trained'][0] != pytest.approx(own['clean'], abs=1e-6)
    assert summary['adpe_ape_coord']['ape_coord']['gap']['n'] == 1
    # reliance is read off the same frozen weights and batch: its clean loss is the attacks' clean loss
    rel = rec['reliance']
    assert rel['clean'] == pytest.approx(rec['attacks']['ape_embed']['clean'], abs=1e-6)
    assert 'rpe_table_norms' not in rel and rel['without_ape'] != pytest.approx(rel['clean'], abs=1e-6)
    assert osp.exists(osp.join(out, 'attack.md')) and osp.exists(osp.join(out, 'attack.json'))
    # a record made before an attack existed (no 'rpe_coord_fade') has no entry for it, not a nan
    entry = dict(clean=0.5, attacked=0.6, gap=0.1)
    old = dict(method='maeplus_rpe', seed=1, attacks={a: entry for a in ('ape_embed', 'ape_coord', 'rpe_embed',
                                                                          'rpe_coord')})
    summary = attack.summarise([old])
    assert set(summary['maeplus_rpe']) == {'ape_embed', 'ape_coord', 'rpe_embed', 'rpe_coord'}
    assert 'nan' not in attack.table(summary)


def test_probe_of_the_study_models_on_a_micro_run(tmp_path):
    spec = importlib.util.spec_from_file_location('probe_study_models',
                                                  osp.join(ROOT, 'tools', 'study', 'probe_study_models.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'study')
    study.main(['--synthetic', '--methods', 'maeplus_rpe', '--seeds', '0', '--out', out, '--pretrain-images',
                '128', '--pretrain-epochs', '1', '--batch-size', '32', '--probe-images', '64', '--finetune-images',
                '32', '--finetune-epochs', '1', '--test-images', '32', '--attn-images', '4'])
    argv = ['--synthetic', '--out', out, '--methods', 'maeplus_rpe', '--seeds', '0', '--images', '4',
            '--steps', '2', '--scan-points', '3', '--threads', '1']
    result = tool.main(argv)['maeplus_rpe_s0']
    assert osp.exists(osp.join(out, 'probe', 'maeplus_rpe_s0.png'))
    assert set(result['attacks']) == set(tool.BUDGETS)  # a model with iRPE gets every mode
    for name, runs in result['attacks'].items():
        assert [r['eps'] for r in runs] == tool.BUDGETS[name]
        gains = [r['gain'] for r in runs]
        assert gains[0] >= 0 and all(b >= a for a, b in zip(gains, gains[1:]))  # nested balls
        assert runs[0]['clean'] == pytest.approx(result['reliance']['clean'], abs=1e-6)
    assert len(result['reliance']['rpe_table_norms']) == 6  # 4 encoder + 2 decoder blocks
    assert result['own'] is None and result['settings']['images'] == 4 * 2
    with open(osp.join(out, 'probe', 'maeplus_rpe_s0.json')) as f:  # a second call reads the written result
        assert tool.main(argv)['maeplus_rpe_s0'] == json.load(f)
