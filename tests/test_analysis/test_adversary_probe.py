"""The adversary-strength probe (adpe_mm/analysis/adversary_probe.py, tools/analysis_tools/adversary_probe.py)
and the one PGD step it shares with sequential mode."""
import importlib.util
import json
import os.path as osp

import pytest
import torch

from _tiny import randomise_tables, tiny_mae_plus
from adpe_mm.analysis.adversary_probe import build_attacked, model_reliance, parse_attack, probe, set_adversaries
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
            from_zero = max(r['losses'] + [r['clean']]) - r['clean']
            assert r['gain_from_zero'] == pytest.approx(from_zero) and r['gain'] >= from_zero >= 0
            assert r['losses'][0] == pytest.approx(r['clean'], abs=1e-6)  # every attack starts at zero
    small, large = out['attacks']['rpe-coord-linf']
    assert small['gain'] > 0 and small['saturation'][0] == 0.  # (steps of 10 patches at eps 20 may overshoot)
    # sign steps of 0.5 eps reach +-20 in two steps: past 12.33 patches the clamp edge saturates every pair on
    # that axis, the fade edge only past 21.2, so fewer pairs are saturated and the gradient never vanishes
    clamp, = out['attacks']['rpe-coord-linf-clamp']
    assert max(clamp['saturation']) > max(large['saturation']) and min(large['grad_norms']) > 0
    assert out['attacks']['ape-embed-l2'][0]['saturation'] is None


@pytest.mark.filterwarnings('ignore:the iRPE coordinate adversary')
def test_nested_balls_the_gain_is_the_best_of_a_start_from_zero_and_one_from_the_smaller_balls_best(
        photos, random_state):
    budgets = {'rpe-coord-linf': [20., 2., 5.], 'ape-embed-l2': [3., 1.]}  # given unsorted
    out = probe(model_cfg(), random_state, photos, budgets, steps=2, step_size=0.5)
    for name, runs in out['attacks'].items():
        assert [r['eps'] for r in runs] == sorted(budgets[name])
        assert 'losses_from_smaller' not in runs[0] and runs[0]['gain'] == runs[0]['gain_from_zero']
        for prev, r in zip(runs, runs[1:]):
            warm = r['losses_from_smaller']
            # the second run starts where the smaller ball's best iterate was: the same loss, re-evaluated
            assert warm[0] == pytest.approx(prev['clean'] + prev['gain'], abs=1e-5)
            assert r['gain'] == pytest.approx(max(r['gain_from_zero'], max(warm) - r['clean']))
            assert r['gain'] >= prev['gain'] - 1e-6  # the best loss found cannot fall as the ball grows


@pytest.mark.filterwarnings('ignore:the iRPE coordinate adversary')
def test_shift_scan_reads_the_loss_at_uniform_shifts_and_the_clamp_edge_is_flat_past_its_radius(
        photos, random_state):
    budgets = {'rpe-coord-linf-clamp': [5., 20.], 'ape-coord-l2': [3.], 'rpe-embed-l2': [3.]}
    out = probe(model_cfg(), random_state, photos, budgets, steps=1, scan_points=9)
    assert set(out['scans']) == {'rpe-coord-linf-clamp', 'ape-coord-l2'}  # coordinate attacks only
    clamp = out['scans']['rpe-coord-linf-clamp']
    assert clamp['shifts'] == pytest.approx([2.5 * i for i in range(9)])  # up to the largest eps
    clean = out['attacks']['rpe-coord-linf-clamp'][0]['clean']
    for losses in clamp['losses'].values():
        assert losses[0] == pytest.approx(clean, abs=1e-6)
        # on the 7x7 grid (offsets -6..6) a row shift of 12.33 or more saturates every pair on that axis, so
        # the bias, and the loss, no longer change; below that they do
        near = [v for s, v in zip(clamp['shifts'], losses) if s < 12.33]
        far = [v for s, v in zip(clamp['shifts'], losses) if s >= 12.33]
        assert len(far) == 4 and max(far) - min(far) < 1e-6 and max(near) - min(near) > 1e-5
    # a point of the scan is the loss with every block's adversary set to that shift
    model = build_attacked(model_cfg(), random_state, dict(pe='rpe', mode='coord', norm='linf', eps=20.,
                                                           edge='clamp'))
    set_adversaries(model, {n: torch.tensor([5., 5.]) for n, p in model.named_parameters() if 'adv_' in n})
    mask = model.backbone.fixed_masking(photos.shape[0], photos.device, 0)
    with torch.no_grad():
        pred, _ = model.reconstruct(photos, patch_mask=mask)
        assert float(model.head.loss(pred, photos, mask)) == pytest.approx(clamp['losses']['diagonal'][2], abs=1e-6)
    ape = out['scans']['ape-coord-l2']  # l2: the diagonal direction has norm 1 too, so it stays in the ball
    assert ape['shifts'][-1] == pytest.approx(3.) and ape['losses']['diagonal'][-1] != ape['losses']['axis'][-1]
    with pytest.raises(ValueError, match='scan_points'):
        probe(model_cfg(), random_state, photos, budgets, steps=1, scan_points=1)


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
    assert len(result['scans']['rpe-coord-linf']['losses']['axis']) == 17  # the tool's default scan
    assert (tmp_path / 'probe.png').stat().st_size > 10_000


def test_model_reliance_restores_what_it_removed(photos, random_state):
    """The study's attack measures reliance on the model it then attacks: the APE and tables come back."""
    model = build_attacked(model_cfg(), random_state, None)
    mask = model.backbone.fixed_masking(photos.shape[0], photos.device, 0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = model_reliance(model, photos, mask)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0, msg=k)
    assert model_reliance(model, photos, mask) == first  # so a second call reads the same model
    assert first['without_rpe'] != pytest.approx(first['clean'], abs=1e-4)


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
