"""tools/analysis_tools on checkpoints and logs of our own tiny pretraining runs (MAE, MAE+, AdPE).

The three runs train in parallel subprocesses through tools/train.py (2-3 iterations each, ~20 s); the tools
run in-process through their ``main(argv)``.
"""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import mmcv
import pytest

from adpe_mm.analysis import list_images, read_scalars

# not `from conftest import ...`: with several conftest.py files in tests/ that name is ambiguous
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

CONFIGS = {
    'MAE': osp.join(REPO_ROOT, 'configs', 'smoke', 'mae_vit-tiny-p16_1xb4-20iter_embedded-96px.py'),
    'MAE+': osp.join(REPO_ROOT, 'configs', 'mae_plus', 'maeplus_vit-tiny-p16_4x112-1xb8-300iter_embedded.py'),
}
# AdPE on the tiny MAE+, with both logging hooks; stated here so the test does not follow other configs.
ADPE_CONFIG = """_base_ = [{base!r}]
model = dict(adversary=dict(pe='ape', mode='embed', norm='linf', eps=3.0), log_adv_gap=True)
optim_wrapper = dict(type='AdvOptimWrapper',
                     paramwise_cfg=dict(custom_keys={{'adv_': dict(decay_mult=0., maximize=True)}}))
custom_hooks = [dict(type='AdversaryHook'), dict(type='AttentionDistanceHook', num_images=4)]
"""
ITERS = {'MAE': 2, 'MAE+': 2, 'AdPE': 3}


def train_env():
    """CPU only, this checkout importable, one thread per process (three runs share the machine)."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join(p for p in (REPO_ROOT, env.get('PYTHONPATH')) if p)
    return env


def load_tool(name):
    path = osp.join(REPO_ROOT, 'tools', 'analysis_tools', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'analysis_tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_drawn_png(path):
    image = mmcv.imread(str(path))
    assert image is not None and image.size > 0 and image.std() > 0, f'{path} is missing or blank'


@pytest.fixture(scope='module')
def runs(tmp_path_factory, embedded_data):
    """{label: dict(config, checkpoint, work_dir)} of three tiny pretraining runs; logs every iteration."""
    tmp = tmp_path_factory.mktemp('analysis_runs')
    adpe_config = tmp / 'adpe_tiny.py'
    adpe_config.write_text(ADPE_CONFIG.format(base=CONFIGS['MAE+']))
    configs = dict(CONFIGS, AdPE=str(adpe_config))
    procs, out = {}, {}
    for label, config in configs.items():
        work_dir = tmp / label.replace('+', 'plus')
        options = [f'train_dataloader.dataset.data_root={embedded_data}', f'train_cfg.max_iters={ITERS[label]}',
                   f'default_hooks.checkpoint.interval={ITERS[label]}', 'default_hooks.logger.interval=1']
        if label != 'AdPE':
            options.append('custom_hooks=[]')
        cmd = [sys.executable, osp.join(REPO_ROOT, 'tools', 'train.py'), config, '--work-dir', str(work_dir),
               '--cfg-options'] + options
        procs[label] = subprocess.Popen(cmd, cwd=str(tmp), env=train_env(), stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        out[label] = dict(config=config, work_dir=str(work_dir),
                          checkpoint=str(work_dir / f'iter_{ITERS[label]}.pth'))
    for label, proc in procs.items():
        log, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            pytest.fail(f'tiny {label} pretraining failed:\n{log[-4000:]}')
    return out


@pytest.fixture(scope='module')
def images(embedded_data):
    return list_images([osp.join(embedded_data, 'train')])


def model_args(runs, labels):
    return [arg for label in labels for arg in ('--model', label, runs[label]['config'], runs[label]['checkpoint'])]


def test_attention_maps_of_mae_maeplus_adpe_single_and_averaged_in_one_png(runs, images, tmp_path):
    out = tmp_path / 'attention_maps.png'
    load_tool('attention_maps').main(
        model_args(runs, ['MAE', 'MAE+', 'AdPE']) +
        ['--images', images[0], '--average-over'] + images[:4] +
        ['--points', '0.3,0.3', '0.6,0.8', '--out', str(out)])
    assert_drawn_png(out)


def test_attention_distance_tool_gives_every_block_of_every_model(runs, images, tmp_path):
    results = load_tool('attention_distance').main(
        model_args(runs, ['MAE', 'AdPE']) + ['--images'] + images[:3] + ['--out-dir', str(tmp_path)])
    assert [len(results[label]['mean']) for label in ('MAE', 'AdPE')] == [2, 4]  # blocks of the two configs
    assert_drawn_png(tmp_path / 'attention_distance.png')


@pytest.mark.parametrize('label', ['MAE', 'AdPE'])
def test_reconstruct_tool_draws_both_views(runs, images, tmp_path, label):
    written = load_tool('reconstruct').main(
        [runs[label]['config'], runs[label]['checkpoint'], '--images'] + images[:2] + ['--out-dir', str(tmp_path)])
    assert [osp.basename(p) for p in written] == ['reconstruction.png', 'reconstruction_normpix.png']
    for path in written:
        assert_drawn_png(path)


def test_plot_adversary_draws_norm_and_gap_of_the_adpe_run(runs, tmp_path):
    out = tmp_path / 'adversary.png'
    load_tool('plot_adversary').main([runs['AdPE']['work_dir'], '--out', str(out)])
    assert_drawn_png(out)


def test_plot_adversary_refuses_a_run_without_adversary_logs(runs, tmp_path):
    with pytest.raises(SystemExit, match='adv_norm or adv_gap'):
        load_tool('plot_adversary').main([runs['MAE+']['work_dir'], '--out', str(tmp_path / 'x.png')])


def test_attention_distance_hook_logs_every_block_at_every_logged_iteration(runs):
    scalars = read_scalars(runs['AdPE']['work_dir'])
    for i in range(4):
        steps, values = scalars[f'attn_dist_layer{i}']
        assert steps == [1, 2, 3] and all(0 < v < 7 * 2**.5 for v in values)  # inside a 7x7 grid
