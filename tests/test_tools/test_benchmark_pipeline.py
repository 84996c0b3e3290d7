"""tools/analysis_tools/benchmark_pipeline.py: makes ImageNet-sized JPEGs, runs the MAE and MAE+ train
pipelines of the configs, reports rates, ratios, cores per GPU and the per-stage split (structure, not timings)."""
import importlib.util
import json
import os.path as osp
import sys

import pytest
from PIL import Image

from conftest import REPO_ROOT, run_tool

TOOL = osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'benchmark_pipeline.py')
MAE_PLUS = osp.join(REPO_ROOT, 'configs', 'mae_plus', 'maeplus_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py')


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('benchmark_pipeline', TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules['benchmark_pipeline'] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop('benchmark_pipeline', None)


def test_jpegs_are_imagenet_sized(tool, embedded_data, tmp_path):
    files = tool.make_jpegs(osp.join(embedded_data, 'train'), str(tmp_path))
    assert len(files) >= 10
    for path in files:
        with Image.open(path) as im:
            assert im.format == 'JPEG' and max(im.size) == 500


def test_tool_keys_set_multicrop_and_drop_the_loader_for_reduced_decode(tool):
    entry = tool.parse_entry(f"{MAE_PLUS}:name=r,crops=2,multicrop=dict(reduced_decode=True,backend='pillow')")
    pipeline = tool.entry_pipeline(entry)
    assert [t['type'] for t in pipeline] == ['MultiCrop', 'PackInputs']
    assert pipeline[0]['num_crops'] == 2 and pipeline[0]['backend'] == 'pillow'
    plain = tool.entry_pipeline(tool.parse_entry(f'{MAE_PLUS}:name=p'))
    assert [t['type'] for t in plain] == ['LoadImageFromFile', 'MultiCrop', 'PackInputs']


def test_default_run_reports_every_entry_stage_and_target(tool, embedded_data, tmp_path):
    out = tmp_path / 'pipeline.json'
    proc = run_tool([sys.executable, TOOL, '--photos', osp.join(embedded_data, 'train'), '--images', '2',
                     '--rounds', '2', '--warmup', '0', '--json', str(out)], cwd=REPO_ROOT, timeout=300)
    report = json.loads(out.read_text())
    rows = {r['name']: r for r in report['rows']}
    assert list(rows) == [name for name, *_ in tool.DEFAULT_ENTRIES]
    assert report['baseline'] == 'mae-224' and rows['mae-224']['ratio'] == 1.0
    assert rows['maeplus-4x112']['crops'] == 4 and rows['maeplus-1x112']['crops'] == 1
    for row in rows.values():
        assert row['images_per_s'] > 0 and len(row['rounds']) == 2
        assert row['cores_per_gpu'] == pytest.approx(1000. / row['images_per_s'])
        assert set(row['stage_ms_per_image']) == {'decode', 'crop+resize', 'flip', 'pack', 'other'}
        # the stages (with 'other' the remainder) add up to the measured time per image
        mean_ms = 1e3 * sum(row['rounds']) / len(row['rounds']) / 2
        assert sum(row['stage_ms_per_image'].values()) == pytest.approx(mean_ms, rel=1e-6)
    # reduced decoding happens inside MultiCrop, and is still timed as decode
    assert rows['4x112-reduced']['pipeline'][0]['type'] == 'MultiCrop'
    assert rows['4x112-reduced']['stage_ms_per_image']['decode'] > 0
    assert 0 <= rows['4x112-reduced']['reduced_pct'] <= 100 and rows['maeplus-4x112']['reduced_pct'] is None
    targets = [t['target'] for t in report['targets']]
    assert 'maeplus-4x112 / mae-224 images/s per core >= 1.0' in targets
    assert 'cores per GPU at 1000 images/s' in proc.stdout and 'img/s/core' in proc.stdout


def test_unknown_baseline_is_named(tool):
    with pytest.raises(SystemExit, match='mae-999'):
        tool.main(['--baseline', 'mae-999', '--images', '1'])
