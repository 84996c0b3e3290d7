"""adpe_mm.det / adpe_mm.seg refuse to import without compiled mmcv ops, and say how to fix it."""
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, tool_env

# Simulates an mmcv built without ops: a None entry in sys.modules makes `import mmcv._ext` fail.
WITHOUT_OPS = """
import sys
sys.modules['mmcv._ext'] = None
for name in [m for m in sys.modules if m == 'mmcv.ops' or m.startswith(('mmcv.ops.', 'adpe_mm.det', 'adpe_mm.seg'))]:
    del sys.modules[name]
try:
    import {module}
except ImportError as e:
    print('IMPORT ERROR:', e)
    sys.exit(3)
"""


@pytest.mark.parametrize('module', ['adpe_mm.det', 'adpe_mm.seg'])
def test_import_without_mmcv_ops_says_how_to_fix(module):
    proc = subprocess.run([sys.executable, '-c', WITHOUT_OPS.format(module=module)], cwd=REPO_ROOT,
                          env=tool_env(), capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    assert module in proc.stdout
    assert 'import of mmcv._ext halted' in proc.stdout  # the cause is kept in the message
    assert 'bash tools/install.sh' in proc.stdout


@pytest.mark.parametrize('module', ['adpe_mm.det', 'adpe_mm.seg'])
def test_import_with_mmcv_ops_succeeds(module):
    proc = subprocess.run([sys.executable, '-c', f'import {module}'], cwd=REPO_ROOT, env=tool_env(),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
