"""The adversary-strength probe (adpe_mm/analysis/adversary_probe.py, tools/analysis_tools/adversary_probe.py)
and the one PGD step it shares with sequential mode."""
import importlib.util
import json
import os.path as osp

import pytest
import torch

from _tiny import randomise_tables, tiny_mae_plus
from adpe_mm.analysis.adversary_probe import parse_attack, probe
from adpe_mm.adversary import adversary_parameter, pgd_step_

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RPE_COORD_CONFIG = osp.join(REPO_ROOT, 'configs', 'adpe', 'tiny',
                            'adpe-rpe-coord_vit-tiny-p16_4x112-1xb8-300iter_embedded.py')


def test_pgd_step_moves_step_times_eps_in_the_balls_own_norm_then_projects():
    p = adversary_parameter(3, 'l2', 2.)
    pgd_step_(p, torch.tensor([0., 3., 4.]), 0.25)  # 0.5 along (0, 0.6, 0.8)
    torch.testing.assert_close(p.data, torch.tensor([0., 0.3, 0.4]))
    for _ in range(5):
        pgd_step_(p, torch.tensor([0., 3., 4.]), 0.25)
    torch.testing.assert_close(p.data, torch.tensor([0., 1.2, 1.6]))  # on the ball (norm 2)
    q = adversary_parameter(3, 'linf', 2.)
    pgd_step_(q, torch.tensor([-1e-3, 0., 5.]), 0.75)  # 1.5 along the sign, 0 where the gradient is 0
    torch.testing.assert_close(q.data, torch.tensor([-1.5, 0., 1.5]))
    pgd_step_(q, torch.tensor([-1., 0., 1.]), 0.75)
    torch.testing.assert_close(q.data, torch.tensor([-2., 0., 2.]))
    pgd_step_(q, None, 0.75)
    torch.testing.assert_close(q.data, torch.tensor([-2., 0., 2.]))


def model_cfg():
    from mmengine.config import Config
    cfg = Config.fromfile(RPE_COORD_CONFIG).model.to_dict()
    cfg['data_preprocessor'] = dict(type='SelfSupDataPreprocessor', mean=[123.675, 116.28, 103.53],
                                    std=[58.395, 57.12, 57.375], to_rgb=True)
    return cfg


@pytest.fixture(scope='module')
def photos(embedded_data):
    from adpe_mm.analysis import list_images, load_images
    model = tiny_mae_plus()
    return load_images(model, list_images([osp.join(embedded_data, 'train')], 4))


@pytest.fixture(scope='module')
def random_state():
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(model_cfg())
    model.init_weights()
    randomise_tables(model)
    return model.state_dict()


@pytest.mark.filterwarnings('ignore:the iRPE coordinate adversary')
def test_probe_measures_gain_saturation_and_gradient_of_fresh_attacks(photos, random_state):
    budgets = {'rpe-coord-linf': [2., 20.], 'rpe-coord-linf-clamp': [20.], 'ape-embed-l2': [3.]}
    out = probe(model_cfg(), random_state, photos, budgets, steps=3, step_size=0.5)
    assert set(out['attacks']) == set(budgets) and out['skipped'] == {}
    for name, runs in out['attacks'].items():
        for r in runs:
            assert len(r['losses']) == 4 and len(r['grad_norms']) == 3
            assert r['gain'] == pytest.approx(max(r['losses'] + [r['clean']]) - r['clean']) and r['gain'] >= 0
            assert r['losses'][0] == pytest.approx(r['clean'], abs=1e-6)  # every attack starts at zero
    small, large = out['attacks']['rpe-coord-linf']
    assert small['gain'] > 0 and small['saturation'][0] == 0.  # (steps of 10 patches at eps 20 may overshoot)
    # sign steps of 0.5 eps reach +-20 in two steps: past 12.33 patches the clamp edge saturates every pair on
    # that axis, the fade edge only past 21.2, so fewer pairs are saturated and the gradient never vanishes
    clamp, = out['attacks']['rpe-coord-linf-clamp']
    assert max(clamp['saturation']) > max(large['saturation']) and min(large['grad_norms']) > 0
    assert out['attacks']['ape-embed-l2'][0]['saturation'] is None


def test_attacks_that_do_not_fit_are_skipped_with_the_reason_and_bad_names_refused(photos):
    cfg = model_cfg()
    cfg['backbone'] = dict(cfg['backbone'], rpe=None)
    cfg['neck'] = dict(cfg['neck'], rpe=None)
    cfg['adversary'] = None
    out = probe(cfg, None, photos, {'rpe-embed-l2': [3.], 'ape-coord-l2': [1.]}, steps=1)
    assert out['skipped'] == {'rpe-embed-l2': 'the model has no iRPE'} and list(out['attacks']) == ['ape-coord-l2']
    for bad, match in (('rpe-coord', 'rpe-coord'), ('rpe-shift-l2', "'shift'"), ('ape-coord-l2-fade', 'edge')):
        with pytest.raises(ValueError, match=match):
            parse_attack(bad)


def test_the_tool_writes_json_and_png(tmp_path, embedded_data):
    path = osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'adversary_probe.py')
    spec = importlib.util.spec_from_file_location('adversary_probe_tool', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main([RPE_COORD_CONFIG, '--images', osp.join(embedded_data, 'train'), '--num-images', '2',
               '--random-tables', '--steps', '1', '--budget', 'rpe-coord-linf=10,20', '--out-dir', str(tmp_path)])
    with open(tmp_path / 'probe.json') as f:
        result = json.load(f)
    assert [r['eps'] for r in result['attacks']['rpe-coord-linf']] == [10., 20.]
    assert (tmp_path / 'probe.png').stat().st_size > 10_000


def test_reliance_on_the_perturbed_channels_and_the_models_own_adversary(photos, random_state):
    state = dict(random_state)
    # a "trained" RPE-coord adversary in every block: shifted by (1, -1) patch
    for k in [k for k in state if k.endswith('adv_coord')]:
        state[k] = torch.tensor([1., -1.])
    out = probe(model_cfg(), state, photos, {'ape-coord-l2': [1.]}, steps=2, step_size=0.5)
    rel = out['reliance']
    norms = {k: v for k, v in state.items() if k.endswith('lookup_table')}
    assert rel['rpe_table_norms'] == pytest.approx({k[:-len('.lookup_table')]: float(v.norm())
                                                    for k, v in norms.items()})
    assert rel['clean'] == pytest.approx(out['attacks']['ape-coord-l2'][0]['clean'], abs=1e-6)
    # random tables carry positional bias the model depends on; removing a channel changes the loss
    assert rel['without_rpe'] != pytest.approx(rel['clean'], abs=1e-4)
    assert rel['without_ape'] != pytest.approx(rel['clean'], abs=1e-4)
    own = out['own']
    assert own['adversary']['mode'] == 'coord' and own['clean'] == pytest.approx(rel['clean'], abs=1e-6)
    # the attack starts at the trained shift, so its first loss is the loss there
    assert own['trained_gain'] == pytest.approx(own['losses'][0] - own['clean'])
    assert own['trained_gain'] != pytest.approx(0., abs=1e-6) and own['gain'] >= max(0., own['trained_gain'])
    assert probe(model_cfg(), random_state, photos, {}, steps=1)['own'] is not None  # zeros are still its own
