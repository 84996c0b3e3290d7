"""Make the tiny-model helpers in this folder importable as ``_tiny``."""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import pytest  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    """Build optimizer wrappers and hooks from mmpretrain's registries, as the runner does for our configs."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield
