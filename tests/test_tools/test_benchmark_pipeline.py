"""tools/analysis_tools/benchmark_pipeline.py: makes ImageNet-sized JPEGs, runs the MAE and MAE+ pipelines,
reports rates, ratios to MAE 224 and the per-stage split, and the target line (structure, not timings)."""
import importlib.util
import json
import os.path as osp

import pytest
from PIL import Image

from conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location(
    'benchmark_pipeline', osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'benchmark_pipeline.py'))
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)


def test_jpegs_are_imagenet_sized(embedded_data, tmp_path):
    files = tool.make_jpegs(embedded_data, str(tmp_path), limit=3)
    assert len(files) == 3
    for path in files:
        with Image.open(path) as im:
            assert im.format == 'JPEG' and max(im.size) == 500


def test_report_structure(embedded_data, tmp_path, capsys):
    out = str(tmp_path / 'pipeline.json')
    report = tool.main(['--data', embedded_data, '--images', '3', '--rounds', '1', '--json', out,
                        '--entries', 'mae-224', 'maeplus-k4', 'maeplus-k4-reduced'])
    assert list(report) == ['mae-224', 'maeplus-k4', 'maeplus-k4-reduced']
    assert report['mae-224']['ratio_to_mae'] == pytest.approx(1.0)
    assert all(r['images_per_s_per_core'] > 0 for r in report.values())
    assert set(report['maeplus-k4']['ms_per_image']) == {'decode', 'crop+resize+flip', 'pack'}
    assert 'decode' not in report['maeplus-k4-reduced']['ms_per_image']  # MultiCrop decodes the file itself
    printed = capsys.readouterr().out
    assert 'target MAE+ 4x112 >= 1.0x MAE 224 per core' in printed and 'cores one GPU needs' in printed
    assert json.load(open(out))['entries'].keys() == report.keys()


def test_unknown_entries_are_named(embedded_data):
    with pytest.raises(SystemExit, match='maeplus-k9'):
        tool.main(['--data', embedded_data, '--entries', 'maeplus-k9'])
