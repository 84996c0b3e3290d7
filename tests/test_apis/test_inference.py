"""MIMInferencer on an embedded photo: the input is the photo's centre square, prepared here independently
with OpenCV; the mask has the model's ratio and follows the seed; the visible patches are pasted back
unchanged; features are the unmasked encoder's; a checkpoint round-trips; bad inputs are named."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from adpe_mm.apis import MIMInferencer
from conftest import REPO_ROOT

CONFIG = osp.join(REPO_ROOT, 'configs', 'mae_plus', 'maeplus_vit-tiny-p16_4x112-1xb8-300iter_embedded.py')
MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)  # configs/_base_/models/mae_plus_vit-*.py
SIZE, PATCH = 112, 16


@pytest.fixture(scope='module')
def photo(embedded_data):
    return osp.join(embedded_data, 'train', 'skimage', 'chelsea.png')


@pytest.fixture(scope='module')
def inferencer():
    torch.manual_seed(0)
    return MIMInferencer(CONFIG)


def _centre_square_rgb(path: str) -> np.ndarray:
    """Shorter side to 112 px (bicubic), then the central 112 x 112, in RGB."""
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    h, w = bgr.shape[:2]
    scale = SIZE / min(h, w)
    new_w, new_h = max(SIZE, round(w * scale)), max(SIZE, round(h * scale))
    bgr = cv2.resize(bgr, (new_w, new_h), interpolation=cv2.INTER_CUBIC)
    top, left = (new_h - SIZE) // 2, (new_w - SIZE) // 2
    return bgr[top:top + SIZE, left:left + SIZE, ::-1]


def test_shapes_mask_and_pasted_visible_patches(inferencer, photo):
    result = inferencer(photo, seed=3)[0]
    expected = _centre_square_rgb(photo)
    assert result.image.shape == result.reconstruction.shape == result.pasted.shape == (SIZE, SIZE, 3)
    assert np.array_equal(result.image, expected)
    grid = SIZE // PATCH
    # MAE's rule: keep int(N * (1 - ratio)) = 12 of the 49 patches, mask the other 37
    assert result.mask.shape == (grid, grid) and result.mask.sum() == grid * grid - int(grid * grid * 0.25)
    visible = ~np.kron(result.mask, np.ones((PATCH, PATCH), bool))  # [112, 112], True = visible pixel
    diff = np.abs(result.pasted.astype(int) - expected.astype(int))
    assert diff[visible].max() <= 1  # the visible pixels are the photo's (up to rounding)
    assert (result.masked_input[~visible] == 128).all()  # masked pixels shown mid-grey
    assert np.isfinite(result.loss) and result.loss > 0


def test_the_mask_follows_the_seed(inferencer, photo):
    a, b, c = inferencer(photo, seed=1)[0], inferencer(photo, seed=1)[0], inferencer(photo, seed=2)[0]
    assert np.array_equal(a.mask, b.mask) and np.array_equal(a.reconstruction, b.reconstruction)
    assert not np.array_equal(a.mask, c.mask)


def test_features_are_the_unmasked_encoder_output(inferencer, photo):
    result = inferencer(photo)[0]
    rgb = torch.from_numpy(_centre_square_rgb(photo).astype(np.float32)).permute(2, 0, 1)
    x = ((rgb - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None])[None]
    with torch.no_grad():
        tokens = inferencer.model.backbone(x, mask=None)[-1][0]
    assert result.features.shape == (1 + (SIZE // PATCH)**2, 128)  # cls + 49 patches, tiny width
    torch.testing.assert_close(result.features, tokens, atol=1e-4, rtol=1e-4)


def test_arrays_paths_and_batches_agree(inferencer, photo):
    from_path = inferencer(photo, seed=5)[0]
    from_array = inferencer(cv2.imread(photo, cv2.IMREAD_COLOR), seed=5)[0]
    assert np.array_equal(from_path.reconstruction, from_array.reconstruction)
    batch = inferencer([photo, photo], seed=5)
    assert len(batch) == 2 and np.array_equal(batch[0].image, from_path.image)


def test_a_checkpoint_round_trips(inferencer, photo, tmp_path):
    path = str(tmp_path / 'iter_1.pth')
    torch.save(dict(state_dict=inferencer.model.state_dict(), meta=dict(iter=1)), path)
    loaded = MIMInferencer(CONFIG, path)
    a, b = inferencer(photo, seed=0)[0], loaded(photo, seed=0)[0]
    assert np.array_equal(a.reconstruction, b.reconstruction)
    torch.testing.assert_close(a.features, b.features)


def test_bad_inputs_are_named(inferencer, tmp_path):
    with pytest.raises(ValueError, match=r'\(4, 4\)'):
        inferencer(np.zeros((4, 4), np.uint8))
    missing = str(tmp_path / 'nope.png')
    with pytest.raises(FileNotFoundError, match='nope.png'):
        inferencer(missing)
