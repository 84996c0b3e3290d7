"""tools/analysis_tools/gpu_check.sh --dry-run: every section printed, and bf16 agrees with fp32 on CPU."""
import importlib.util
import json
import os.path as osp
import sys

import pytest

from conftest import REPO_ROOT, run_tool, tool_env

SCRIPT = osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'gpu_check.sh')
SECTIONS = ('== card', '== bf16 autocast vs fp32', '== SDPA backends', '== step', '== targets')
ADPE = ('AdPE ape-embed', 'AdPE ape-coord', 'AdPE rpe-embed', 'AdPE rpe-coord')
SPEED = ('MAE 224', 'MAE+ 1x112', 'MAE+ 4x112 APE', 'MAE+ 4x112 iRPE', 'AdPE RPE coord')


@pytest.fixture(scope='module')
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('gpu_check') / 'gpu_check.json'
    env = dict(tool_env(), PYTHON=sys.executable)
    proc = run_tool(['bash', SCRIPT, '--dry-run', '--json', str(out)], cwd=REPO_ROOT, env=env, timeout=600)
    return proc.stdout, json.loads(out.read_text())


def test_the_sections_are_printed_in_order(dry_run):
    stdout, result = dry_run
    positions = [stdout.find(s) for s in SECTIONS]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), positions
    assert result['dry_run'] is True and 'not measured (dry run)' in stdout


def test_bf16_agrees_with_fp32_for_mae_plus_every_adpe_mode_and_fgsm(dry_run):
    rows = {r['name']: r for r in dry_run[1]['agreement']}
    assert set(rows) == {'MAE+', 'FGSM', *ADPE}
    for name, row in rows.items():
        assert row['loss_rel_diff'] < 1e-2 and row['weight_grad_cosine'] > 0.99, row
        assert f"{name:16s} loss fp32 {row['loss_fp32']:.5f}" in dry_run[0]
    for name in ADPE:  # the adversary's ascent direction survives bf16
        assert rows[name]['adversary'] == 'parameters' and rows[name]['adv_grad_cosine_min'] > 0.99, rows[name]
    assert rows['MAE+']['adversary'] is None
    assert rows['FGSM']['adversary'] == 'fgsm' and rows['FGSM']['fgsm_sign_agreement'] > 0.95


def test_every_attention_kind_lists_the_backend_torch_picks_and_those_that_run_it(dry_run):
    rows = {r['attention']: r for r in dry_run[1]['sdpa']}
    assert len(rows) == 5 and {r['tokens'] for r in rows.values()} == {50, 197}
    for row in rows.values():
        assert 'MATH' in row['usable'], row  # the reference backend runs everything
        assert set(row['usable']).isdisjoint(row['refused'])
        assert len(row['chosen']) == 1 and set(row['chosen']) <= set(row['usable']), row
    # under bf16 autocast the iRPE bias is in the query's dtype (the memory-efficient kernel refuses any other);
    # 50 keys are not a multiple of 8, so only the aligned layout reaches SDPA with aligned strides
    biased = [name for name in rows if name.startswith('iRPE')]
    assert len(biased) == 3 and all(rows[n]['bias_dtype'] == 'bfloat16' for n in biased)
    assert [n for n in biased if rows[n]['bias_aligned']] == ['iRPE integer aligned, 112 crop']
    assert all(rows[n]['bias_dtype'] is None for n in rows if n.startswith('APE'))
    assert 'bias bfloat16 aligned' in dry_run[0] and 'bias bfloat16 unaligned' in dry_run[0]


def test_the_step_table_has_every_entry_and_formula_flops(dry_run):
    stdout, result = dry_run
    rows = {r['name']: r for r in result['speed']}
    assert list(rows) == list(SPEED)
    for name, row in rows.items():
        assert row['batch'] == 2 and row['search_stop'] == 'dry run', row
        assert row['step_ms'] > 0 and row['images_per_s'] > 0 and row['options'] == {}, row
        assert row['mfu'] is None  # no peak FLOP/s on CPU
        assert f'| {name} | 2 |' in stdout and stdout.count(f'| {name} |') == 1
    # FLOPs per image from the formula (not timings): 4 crops of 112 px cost more than one 224 image of MAE,
    # one 112 crop less, iRPE a little more than APE
    assert rows['MAE 224']['flops_per_image_vs_mae'] == 1.0
    assert rows['MAE+ 1x112']['gmacs_per_image'] < rows['MAE 224']['gmacs_per_image']
    assert rows['MAE+ 4x112 APE']['gmacs_per_image'] > 2 * rows['MAE+ 1x112']['gmacs_per_image']
    assert rows['MAE+ 4x112 iRPE']['gmacs_per_image'] > rows['MAE+ 4x112 APE']['gmacs_per_image']
    assert [t['met'] for t in result['targets']] == [None, None, None]


def gpu_check_module():
    spec = importlib.util.spec_from_file_location(
        'gpu_check', osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'gpu_check.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('name,peak', [('NVIDIA H100 80GB HBM3', 989.), ('NVIDIA H100 PCIe', 756.),
                                       ('NVIDIA A100-SXM4-80GB', 312.), ('NVIDIA A10G', 70.),
                                       ('NVIDIA L40S', 362.), ('NVIDIA H200', 989.), ('Tesla V100-SXM2-16GB', None)])
def test_peak_flops_table_matches_the_card_name(name, peak):
    module = gpu_check_module()
    assert module.peak_tflops(name, None) == peak
    assert module.peak_tflops(name, 123.) == 123.


def test_the_switch_flags_set_fused_adamw_everywhere_and_the_aligned_bias_only_where_there_is_an_irpe():
    module = gpu_check_module()
    args = module.parse_args(['--dry-run', '--fused-adamw', '--aligned-bias'])
    fused = {'optim_wrapper.optimizer.fused': True}
    aligned = {'model.backbone.fused_attn': 'aligned', 'model.neck.fused_attn': 'aligned'}
    by_name = {**module.AGREEMENT, **module.SPEED}
    for name, (config, _) in by_name.items():
        irpe = 'rpe' in osp.basename(config)  # the iRPE configs (MAE+ iRPE, AdPE rpe-*) say so in their names
        assert module.switch_options(osp.join(REPO_ROOT, config), args) == (
            {**fused, **aligned} if irpe else fused), name
    assert module.switch_options(osp.join(REPO_ROOT, by_name['MAE 224'][0]), module.parse_args(['--dry-run'])) == {}


def test_the_aligned_bias_switch_reaches_every_attention_of_an_irpe_model():
    module = gpu_check_module()
    from adpe_mm.models.layers import Attention
    args = module.parse_args(['--dry-run', '--aligned-bias'])
    config = osp.join(REPO_ROOT, module.SPEED['AdPE RPE coord'][0])
    cfg, _ = module.load_config(module.Entry('rpe', config, module.switch_options(config, args), None), 'tiny')
    attentions = [m for m in module.build_model(cfg).modules() if isinstance(m, Attention)]
    assert len(attentions) == 4 + 2 and all(a.fused == 'aligned' and a.rpe is not None for a in attentions)
