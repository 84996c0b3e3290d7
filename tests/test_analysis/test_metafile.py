"""The model index (metafile.yml, model-index.yml) and the model-zoo table of docs/model_zoo.md."""
import importlib.util
import os.path as osp

import modelindex
import pytest
import yaml

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def checker():
    path = osp.join(REPO_ROOT, 'tools', 'misc', 'check_metafile.py')
    spec = importlib.util.spec_from_file_location('check_metafile', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def metafile_models():
    with open(osp.join(REPO_ROOT, 'metafile.yml')) as f:
        return yaml.safe_load(f)['Models']


def test_every_config_is_in_the_metafile_and_every_listed_config_exists():
    listed = sorted(m['Config'] for m in metafile_models())
    assert listed == checker().config_files(REPO_ROOT)


def test_metafile_and_zoo_table_are_what_the_configs_give():
    # after adding configs: python tools/misc/check_metafile.py --write
    assert checker().check(REPO_ROOT) == []


def test_model_index_loads_without_errors():
    index = modelindex.load(osp.join(REPO_ROOT, 'model-index.yml'))
    assert len(index.models) == len(metafile_models()) and index.check(silent=True) == []


def test_every_number_is_marked_as_the_papers():
    with_results = [m for m in metafile_models() if m['Results']]
    assert with_results and all('reported in the AdPE paper' in m['Results Source'] for m in with_results)


def test_best_table_a2_config_reproduces_the_papers_84_01():
    tool = checker()
    config = ('configs/adpe/table_a2/'
              'adpe-rpe-coord-linf-eps20_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py')
    assert tool.paper_result(tool.describe(config, REPO_ROOT))['top1'] == 84.01


def test_a_k2_mae_plus_config_gets_no_paper_number():
    tool = checker()
    config = 'configs/mae_plus/maeplus_vit-base-p16_2x112-8xb128-accum4-amp-coslr-400e_in1k.py'
    assert tool.paper_result(tool.describe(config, REPO_ROOT)) is None  # the paper's numbers are for k = 4


def test_a_sequential_mode_variant_gets_no_paper_number():
    tool = checker()
    config = ('configs/adpe/table_a2/'
              'adpe-rpe-coord-linf-eps20_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py')
    desc = dict(tool.describe(config, REPO_ROOT), adversary_steps=1)
    assert tool.paper_result(desc) is None  # the paper's numbers are for the parallel mode


def test_the_paper_results_file_gives_the_papers_best_and_refuses_unknown_fields(tmp_path):
    module = checker()
    paper, crops, rows = module.load_paper_results()
    assert crops == 4 and paper.startswith('AdPE')
    best = [r for r in rows if r['method'] == 'adpe' and r['epochs'] == 400 and r['adv'] == ('coord', 'linf', 20)]
    assert len(best) == 1 and best[0]['pe'] == 'rpe' and best[0]['top1'] == 84.01  # Table A.2's best
    bad = tmp_path / 'bad.yml'
    bad.write_text("paper: x\ncrops: 4\nresults:\n  - {method: mae, arch: b, epochs: 400, top_1: 82.95}\n")
    with pytest.raises(ValueError, match="top_1"):
        module.load_paper_results(str(bad))


@pytest.mark.parametrize('config', [
    'configs/mae_plus/maeplus-rpe-relaxed_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py',
    'configs/adpe/recalibrated/adpe-rpe-coord-linf-eps5-fresh_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py',
])
def test_our_own_baselines_and_fresh_adversaries_get_no_paper_number(config):
    tool = checker()
    assert tool.paper_result(tool.describe(config, REPO_ROOT)) is None  # integer-lookup, parallel-mode rows
    integer = 'configs/mae_plus/maeplus-rpe_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py'
    assert tool.paper_result(tool.describe(integer, REPO_ROOT))['top1'] == 83.78
