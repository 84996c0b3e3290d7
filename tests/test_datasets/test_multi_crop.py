import numpy as np
import pytest
from mmpretrain.registry import TRANSFORMS

import adpe_mm  # noqa: F401


def photo():
    rng = np.random.default_rng(0)
    return dict(img=rng.integers(0, 255, (300, 400, 3), dtype=np.uint8), img_shape=(300, 400),
                ori_shape=(300, 400))


@pytest.mark.parametrize('mode', ['independent', 'paper'])
def test_k_independent_crops_of_the_requested_size(mode):
    np.random.seed(0)
    out = TRANSFORMS.build(dict(type='MultiCrop', num_crops=4, crop_size=112, mode=mode)).transform(photo())
    crops = out['img']
    assert len(crops) == 4 and all(c.shape == (112, 112, 3) for c in crops)
    assert len({c.tobytes() for c in crops}) == 4  # four different samples


def test_independent_crops_cover_different_scales():
    np.random.seed(0)
    t = TRANSFORMS.build(dict(type='MultiCrop', num_crops=2, crop_size=112))
    means = {round(float(c.mean()), 3) for _ in range(10) for c in t.transform(photo())['img']}
    assert len(means) == 20


@pytest.mark.parametrize('kwargs,match', [
    (dict(num_crops=0), 'num_crops.*0'),
    (dict(num_crops=2.5), 'num_crops.*2.5'),
    (dict(crop_size=-112), 'crop_size.*-112'),
    (dict(mode='global'), "'global'"),
    (dict(mode='paper', base_size=64), 'base_size=64'),
])
def test_bad_values_fail_at_build_naming_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TRANSFORMS.build(dict(type='MultiCrop', **kwargs))
