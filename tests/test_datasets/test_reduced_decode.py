"""MultiCrop(reduced_decode=...): JPEGs decoded at 1/s only when no crop loses resolution by it."""
import glob
import os.path as osp

import numpy as np
import pytest
from mmpretrain.registry import TRANSFORMS
from PIL import Image

import adpe_mm  # noqa: F401
from adpe_mm.datasets.transforms.reduced_decode import decode_scale, header_size


@pytest.fixture(scope='module')
def jpegs(embedded_data, tmp_path_factory):
    """ImageNet-like JPEGs (longer side 500 px, quality 90) of six embedded photographs."""
    out = tmp_path_factory.mktemp('jpegs')
    paths = []
    for i, f in enumerate(sorted(glob.glob(osp.join(embedded_data, 'train', '*', '*.png')))[:6]):
        im = Image.open(f).convert('RGB')
        s = 500 / max(im.size)
        im = im.resize((round(im.width * s), round(im.height * s)), Image.BICUBIC)
        paths.append(str(out / f'{i}.jpg'))
        im.save(paths[-1], quality=90)
    return paths


def multi_crop(path, seed, reduced, **kwargs):
    """MultiCrop of ``path``: decoded by it (``reduced`` = the gap) or by LoadImageFromFile first."""
    np.random.seed(seed)
    crop = TRANSFORMS.build(dict(type='MultiCrop', reduced_decode=reduced, **kwargs))
    if reduced:
        return crop.transform(dict(img_path=path))
    return crop.transform(TRANSFORMS.build(dict(type='LoadImageFromFile')).transform(dict(img_path=path)))


def test_no_crop_is_cut_from_fewer_pixels_than_the_full_decode_uses(jpegs):
    """Reduced crops span >= 112 px of the reduced image; a crop that the full decode upsamples keeps s = 1."""
    scales = []
    for path in jpegs:
        h, w = Image.open(path).size[::-1]
        for seed in range(15):
            out = multi_crop(path, seed, True)
            full = multi_crop(path, seed, False)
            s = out['decode_scale']
            scales.append(s)
            sides = np.minimum(out['crop_boxes'][:, 2] - out['crop_boxes'][:, 0],
                               out['crop_boxes'][:, 3] - out['crop_boxes'][:, 1])  # full-image pixels
            full_sides = np.minimum(full['crop_boxes'][:, 2] - full['crop_boxes'][:, 0],
                                    full['crop_boxes'][:, 3] - full['crop_boxes'][:, 1])
            if s > 1:
                assert np.all(sides / s >= 112), (path, seed, sides, s)  # pixels of the reduced image
                assert np.all(full_sides >= 112)  # so the full decode downscales every crop too
            else:
                np.testing.assert_array_equal(out['crop_boxes'], full['crop_boxes'])
            # the same boxes as the full decode draws, up to the reduced grid
            assert np.abs(out['crop_boxes'] - full['crop_boxes']).max() <= s / 2
            assert out['ori_shape'] == (h, w) and out['img_shape'] == (112, 112)
            assert all(c.shape == (112, 112, 3) and c.dtype == np.uint8 for c in out['img'])
    assert 1 in scales and 2 in scales  # both branches were exercised


def test_reduced_crops_stay_close_to_the_full_decode(jpegs):
    diffs = []
    for path in jpegs:
        for seed in range(10):
            out, full = multi_crop(path, seed, True), multi_crop(path, seed, False)
            if out['decode_scale'] > 1:
                np.testing.assert_array_equal(out['crop_flips'], full['crop_flips'])
                diffs += [np.abs(a.astype(int) - b).mean() for a, b in zip(out['img'], full['img'])]
    assert diffs and np.mean(diffs) < 3  # grey levels: same content, same colour order, slightly softer


def test_a_larger_gap_reduces_less(jpegs):
    for path in jpegs:
        for seed in range(10):
            out = multi_crop(path, seed, 2.0)
            s = out['decode_scale']
            sides = np.minimum(out['crop_boxes'][:, 2] - out['crop_boxes'][:, 0],
                               out['crop_boxes'][:, 3] - out['crop_boxes'][:, 1])
            assert s == 1 or np.all(sides / s >= 224)


def test_decode_scale_rule():
    assert decode_scale([(0, 0, 450, 460)], [112]) == 4
    assert decode_scale([(0, 0, 450, 460), (10, 10, 240, 250)], [112, 112]) == 2
    assert decode_scale([(0, 0, 450, 460), (10, 10, 110, 250)], [112, 112]) == 1
    assert decode_scale([(0, 0, 450, 460)], [112], gap=2.0) == 2


def test_png_and_rotated_jpeg(tmp_path, jpegs):
    """Not a JPEG: full decode, same crops as the usual path; EXIF quarter turn: boxes on the turned image."""
    png = str(tmp_path / 'a.png')
    Image.open(jpegs[0]).save(png)
    out, full = multi_crop(png, 0, True), multi_crop(png, 0, False)
    assert out['decode_scale'] == 1
    for a, b in zip(out['img'], full['img']):
        np.testing.assert_array_equal(a, b)

    turned = str(tmp_path / 'turned.jpg')
    im = Image.open(jpegs[0])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    im.save(turned, quality=90, exif=exif)
    with open(turned, 'rb') as f:
        assert header_size(f.read())[:2] == (im.width, im.height)
    out = multi_crop(turned, 0, True)
    assert out['ori_shape'] == (im.width, im.height)
    assert np.all(out['crop_boxes'][:, 2] <= im.height) and np.all(out['crop_boxes'][:, 3] <= im.width)


def test_reduced_decode_after_a_loader_is_an_error(jpegs):
    loaded = TRANSFORMS.build(dict(type='LoadImageFromFile')).transform(dict(img_path=jpegs[0]))
    with pytest.raises(ValueError, match='remove the LoadImageFromFile'):
        TRANSFORMS.build(dict(type='MultiCrop', reduced_decode=True)).transform(loaded)
