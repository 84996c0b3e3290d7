"""MultiCrop's crops are what the config says: the default antialiased resize matches PIL's bicubic of the
recorded box (the OpenCV option aliases), boxes obey the area and aspect ranges, flips are flips, and the
reduced JPEG decode never cuts a crop from fewer pixels than its output size while staying close to the full
decode."""
import os.path as osp

import mmcv
import numpy as np
import pytest
from mmpretrain.registry import TRANSFORMS
from PIL import Image

import adpe_mm  # noqa: F401
from adpe_mm.datasets.transforms.resized_crop import resized_crop

SIZE = 112


@pytest.fixture(scope='module')
def photo(embedded_data):
    return mmcv.imread(osp.join(embedded_data, 'train', 'skimage', 'chelsea.png'))  # BGR [300, 451, 3]


@pytest.fixture(scope='module')
def jpeg(embedded_data, tmp_path_factory):
    """A 1600 x 1200 quality-90 JPEG: big enough for every crop to allow a reduced decode sometimes."""
    path = str(tmp_path_factory.mktemp('jpeg') / 'big.jpg')
    img = Image.open(osp.join(embedded_data, 'train', 'skimage', 'chelsea.png')).convert('RGB')
    img.resize((1600, 1200), Image.BICUBIC).save(path, quality=90)
    return path


def crops_of(img, seed=0, **kwargs):
    np.random.seed(seed)
    t = TRANSFORMS.build(dict(type='MultiCrop', num_crops=4, crop_size=SIZE, flip_prob=0., **kwargs))
    return t.transform(dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2]))


def pil_resize(img, box):
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return np.asarray(Image.fromarray(img[y0:y1, x0:x1]).resize((SIZE, SIZE), Image.BICUBIC)).astype(int)


def high_frequency_energy(img):
    grey = img.astype(float).mean(axis=2)
    laplacian = 4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return float((laplacian**2).mean())


def test_the_default_resize_matches_pil_bicubic(photo):
    for seed in range(5):
        out = crops_of(photo, seed)
        for crop, box in zip(out['img'], out['crop_boxes']):
            diff = np.abs(crop.astype(int) - pil_resize(photo, box))
            assert diff.max() <= 2 and diff.mean() < 0.05, (seed, box, diff.max(), diff.mean())


def test_the_opencv_option_aliases(photo):
    gaps, energy = [], []
    for seed in range(5):
        out = crops_of(photo, seed, backend='cv2')
        for crop, box in zip(out['img'], out['crop_boxes']):
            x0, y0, x1, y1 = box
            if min(x1 - x0, y1 - y0) >= 2 * SIZE:  # a real downscale
                gaps.append(np.abs(crop.astype(int) - pil_resize(photo, box)).mean())
                energy.append(high_frequency_energy(crop) / high_frequency_energy(pil_resize(photo, box)))
    assert gaps and min(gaps) > 1.0 and np.mean(energy) > 1.2


def test_boxes_obey_the_area_and_aspect_ranges_and_flips_are_flips(photo):
    h, w = photo.shape[:2]
    for seed in range(10):
        out = crops_of(photo, seed)
        for x0, y0, x1, y1 in out['crop_boxes']:
            area = (x1 - x0) * (y1 - y0) / (h * w)
            assert 0.08 - 0.01 <= area <= 1.0 and 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    np.random.seed(1)
    t = TRANSFORMS.build(dict(type='MultiCrop', num_crops=8, crop_size=SIZE, flip_prob=0.5))
    out = t.transform(dict(img=photo, img_shape=photo.shape[:2], ori_shape=photo.shape[:2]))
    assert 0 < out['crop_flips'].sum() < 8
    for crop, box, flipped in zip(out['img'], out['crop_boxes'], out['crop_flips']):
        unflipped = resized_crop(photo, tuple(int(round(v)) for v in box), SIZE)
        assert np.array_equal(crop, unflipped[:, ::-1] if flipped else unflipped)


def test_reduced_decode_never_cuts_from_fewer_pixels_and_stays_close(jpeg):
    full = mmcv.imread(jpeg)
    t = TRANSFORMS.build(dict(type='MultiCrop', num_crops=4, crop_size=SIZE, flip_prob=0., reduced_decode=True))
    np.random.seed(0)
    scales = []
    for _ in range(20):
        out = t.transform(dict(img_path=jpeg))
        s = out['decode_scale']
        scales.append(s)
        for crop, (x0, y0, x1, y1) in zip(out['img'], out['crop_boxes']):
            assert crop.shape == (SIZE, SIZE, 3)
            # the reduced box spans at least the output size: never upsampled from fewer pixels
            assert min(x1 - x0, y1 - y0) / s >= SIZE - 1
            if min(x1 - x0, y1 - y0) < SIZE:
                assert s == 1  # a box the full decode upsamples keeps the full decode
            assert np.abs(crop.astype(int) - pil_resize(full[..., ::-1], (x0, y0, x1, y1))[..., ::-1]).mean() < 2
    assert max(scales) > 1  # the option did act


def test_reduced_decode_refuses_what_it_cannot_do(photo):
    t = TRANSFORMS.build(dict(type='MultiCrop', reduced_decode=True))
    with pytest.raises(ValueError, match='LoadImageFromFile'):
        t.transform(dict(img=photo, img_path='x.jpg'))
    with pytest.raises(ValueError, match="mode='independent'"):
        TRANSFORMS.build(dict(type='MultiCrop', reduced_decode=True, mode='paper'))
    with pytest.raises(ValueError, match="'nearest-gpu'"):
        TRANSFORMS.build(dict(type='MultiCrop', backend='nearest-gpu'))
