"""Shared fixtures: the repository root, the embedded photo set and a subprocess runner for tools/."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys
from typing import List, Optional

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SMOKE_CONFIG = osp.join(REPO_ROOT, 'configs', 'smoke', 'mae_vit-tiny-p16_1xb4-20iter_embedded-96px.py')


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO_ROOT


def load_data_builder():
    """tools/data/build_embedded_data.py as a module (tools/ is not a package)."""
    path = osp.join(REPO_ROOT, 'tools', 'data', 'build_embedded_data.py')
    spec = importlib.util.spec_from_file_location('build_embedded_data', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def data_builder():
    return load_data_builder()


@pytest.fixture(scope='session')
def embedded_data(tmp_path_factory, data_builder) -> str:
    """The embedded photo set: the repo's data/embedded (made by tools/install.sh), or a fresh build."""
    built = osp.join(REPO_ROOT, 'data', 'embedded')
    if osp.exists(osp.join(built, 'sources.json')):
        return built
    out = tmp_path_factory.mktemp('data')
    data_builder.build(str(out), verbose=False)
    return str(out / 'embedded')


def tool_env(**extra: str) -> dict:
    """Environment for tools run in a subprocess: CPU only, this repo importable, no thread oversubscription."""
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO_ROOT + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    env['CUDA_VISIBLE_DEVICES'] = ''
    env.setdefault('OMP_NUM_THREADS', '1')
    env['PYTHON'] = sys.executable
    env.update(extra)
    return env


def run_tool(args: List[str], cwd: str, timeout: int = 600, env: Optional[dict] = None):
    """Run ``args`` (a tools/ command line); fail the test with its output when it exits non-zero."""
    proc = subprocess.run(args, cwd=cwd, env=env or tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f'{" ".join(args)} exited with {proc.returncode}:\n{proc.stdout[-6000:]}')
    return proc


# tests/test_models keeps small importable helpers (_tiny.py, _ddp_worker.py); a second conftest.py there
# would shadow this one for `from conftest import ...`.
sys.path.insert(0, osp.join(REPO_ROOT, 'tests', 'test_models'))


@pytest.fixture(autouse=True)
def _mmpretrain_scope_for_model_tests(request):
    """Model and transform tests build optimizer wrappers, hooks and transforms from mmpretrain's registries, as
    the runner does, whatever default scope an earlier test left behind."""
    if not any(f'{os.sep}{d}{os.sep}' in str(request.node.fspath) for d in ('test_models', 'test_datasets')):
        yield
        return
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield
