"""tools/analysis_tools/benchmark_pretrain.py: its FLOP formula, its entry syntax and an end-to-end run."""
import importlib.util
import json
import os.path as osp
import sys

import pytest
import torch

from conftest import REPO_ROOT, run_tool

TOOL = osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'benchmark_pretrain.py')
MAE = osp.join(REPO_ROOT, 'configs', 'mae', 'mae_vit-base-p16_8xb128-accum4-amp-coslr-400e_in1k.py')
MAE_PLUS_1 = osp.join(REPO_ROOT, 'configs', 'mae_plus',
                      'maeplus_vit-base-p16_1x112-8xb128-accum4-amp-coslr-400e_in1k.py')
MAE_PLUS_RPE = osp.join(REPO_ROOT, 'configs', 'mae_plus',
                        'maeplus-rpe_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py')


@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location('benchmark_pretrain', TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules['benchmark_pretrain'] = module  # NamedTuples need their module while the test runs
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop('benchmark_pretrain', None)


def test_formula_reproduces_the_vit_b_costs_of_the_method_doc(bench):
    """docs/method.md: encoder 4.29 G (50 tokens), MAE decoder 5.28 G (197 tokens), MAE+ decoder 1.28 G."""
    enc = [bench.BlockSpec(768, 3072, 12)] * 12
    dec = [bench.BlockSpec(512, 2048, 16)] * 8
    assert sum(bench.block_flops(50, b) for b in enc) / 1e9 == pytest.approx(4.29, abs=0.005)
    assert sum(bench.block_flops(197, b) for b in dec) / 1e9 == pytest.approx(5.28, abs=0.005)
    assert sum(bench.block_flops(50, b) for b in dec) / 1e9 == pytest.approx(1.28, abs=0.005)


@pytest.mark.parametrize('config,options', [
    (MAE, {}),
    (MAE_PLUS_1, {}),
    (MAE_PLUS_1, {'model.adversary': dict(pe='ape', mode='coord', norm='l2', eps=3.)}),
    (MAE_PLUS_RPE, {'model.adversary': dict(pe='rpe', mode='embed', norm='linf', eps=20.)}),
], ids=['mae', 'maeplus', 'maeplus-ape-coord', 'maeplus-rpe-embed'])
def test_formula_agrees_with_mmengine_flop_counter(bench, config, options):
    """On tiny models, vit_mim_flops is within 2% of FlopAnalyzer (which also counts LayerNorms)."""
    entry = bench.Entry('tiny', config, options, None)
    cfg, _ = bench.load_config(entry, arch='tiny')
    model = bench.build_model(cfg).train()
    crops = bench.pipeline_crops(cfg)
    size = cfg.model.backbone.get('img_size', 224)
    inputs = torch.randn(1, 3, size, size) if crops is None else [torch.randn(1, 3, size, size)] * crops
    formula = bench.model_flops(model)['total'] * (crops or 1)
    counted = bench.counter_flops(model, inputs, [None])
    assert formula == pytest.approx(counted, rel=0.02)
    assert all(p.requires_grad for n, p in model.named_parameters() if 'pos_embed' not in n)


def test_entry_syntax_keeps_commas_inside_dicts(bench):
    entry = bench.parse_entry(f"{MAE_PLUS_1}:name=ape-embed,crops=2,model.backbone.fused_attn=False,"
                              "model.adversary=dict(pe='ape',mode='embed',norm='l2',eps=3),"
                              "model.neck.rpe={'ratio': 1.9}")
    assert entry.name == 'ape-embed' and entry.crops == 2 and entry.config == MAE_PLUS_1
    assert entry.options == {'model.backbone.fused_attn': False,
                             'model.adversary': dict(pe='ape', mode='embed', norm='l2', eps=3),
                             'model.neck.rpe': {'ratio': 1.9}}


def test_runs_end_to_end_and_writes_json(tmp_path):
    out = tmp_path / 'bench.json'
    run_tool([sys.executable, TOOL, f'{MAE}:name=mae', f'{MAE_PLUS_1}:name=maeplus,crops=2', '--arch', 'tiny',
              '--batch-size', '2', '--steps', '2', '--warmup', '1', '--baseline', 'mae', '--json', str(out)],
             cwd=REPO_ROOT, timeout=300)
    report = json.loads(out.read_text())
    rows = {r['name']: r for r in report['rows']}
    assert report['baseline'] == 'mae'
    assert rows['mae']['time_ratio'] == 1.0 and rows['mae']['flop_ratio'] == 1.0 and rows['mae']['mem_ratio'] == 1.0
    assert rows['maeplus']['samples_per_step'] == 4 and rows['maeplus']['ms_per_image'] > 0
    # two 112 px crops with all 50 tokens encoded cost about 2 x 0.58 of one 224 px MAE image (tiny widths)
    assert 0.5 < rows['maeplus']['flop_ratio'] < 2.5
    assert all(len(r['steps']) == 2 for r in report['results'])


def test_dict_override_replaces_none_and_merges_into_dict(bench):
    from mmengine.config import Config
    cfg = Config(dict(model=dict(adversary=None, backbone=dict(rpe=dict(ratio=1.9, index_mode='integer')))))
    bench.set_option(cfg, 'model.adversary', dict(pe='rpe', mode='coord', norm='linf', eps=20))
    bench.set_option(cfg, 'model.backbone.rpe', dict(index_mode='relaxed'))
    assert cfg.model.adversary.to_dict() == dict(pe='rpe', mode='coord', norm='linf', eps=20)
    assert cfg.model.backbone.rpe.to_dict() == dict(ratio=1.9, index_mode='relaxed')
