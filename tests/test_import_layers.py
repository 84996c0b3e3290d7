"""The package's import graph runs one way: the adversary package on the ground floor, nothing imports back up.

Floors (a module may import its own floor and the ones below, never one above):
0 ``adversary``; 1 ``utils``, ``version``; 2 ``models.pos_embed``; 3 ``models.layers``;
4 ``models.backbones``, ``models.necks``; 5 ``models.algorithms``, ``models``, ``datasets``, ``visualization``;
6 ``engine``, ``analysis``, ``apis``, ``det``, ``seg``, the package root.
"""
import ast
import os
import os.path as osp

import pytest

PACKAGE = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'adpe_mm')
FLOORS = {
    'adversary': 0, 'utils': 1, 'version': 1, 'models.pos_embed': 2, 'models.layers': 3,
    'models.backbones': 4, 'models.necks': 4, 'models.algorithms': 5, 'models': 5, 'datasets': 5,
    'visualization': 5, 'engine': 6, 'analysis': 6, 'apis': 6, 'det': 6, 'seg': 6, '': 6,
}


def floor(module: str) -> int:
    """The floor of a dotted module name inside adpe_mm ('' is the package root)."""
    parts = module.split('.')
    for n in range(len(parts), -1, -1):
        key = '.'.join(parts[:n])
        if key in FLOORS:
            return FLOORS[key]
    raise KeyError(module)


def modules():
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith('.py'):
                rel = osp.relpath(osp.join(root, name), PACKAGE)[:-3].replace(os.sep, '.')
                yield rel[:-len('.__init__')] if rel.endswith('__init__') else ('' if rel == '__init__' else rel), \
                    osp.join(root, name)


def internal_imports(module: str, path: str):
    """adpe_mm-relative names of every module ``path`` imports from the package (function-level ones too)."""
    tree = ast.parse(open(path).read())
    package = module if path.endswith('__init__.py') else module.rpartition('.')[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.') if package else []
                base = base[:len(base) - (node.level - 1)]
                yield '.'.join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == 'adpe_mm' or node.module.startswith('adpe_mm.')):
                yield node.module[len('adpe_mm.'):] if node.module != 'adpe_mm' else ''
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith('adpe_mm.'):
                    yield alias.name[len('adpe_mm.'):]


def test_no_models_utils_and_the_adversary_package_imports_nothing_of_adpe_mm():
    names = dict(modules())
    assert not any(m == 'models.utils' or m.startswith('models.utils.') for m in names)
    for module, path in names.items():
        if module.startswith('adversary'):
            assert all(t.startswith('adversary') for t in internal_imports(module, path)), module


@pytest.mark.parametrize('module,path', sorted(modules()))
def test_no_import_runs_back_up(module, path):
    upward = [t for t in internal_imports(module, path) if floor(t) > floor(module)]
    assert not upward, f'adpe_mm.{module} (floor {floor(module)}) imports {upward}'
