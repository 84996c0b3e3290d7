"""Reduced-size JPEG decoding: decode at 1/2, 1/4 or 1/8 of the size when no crop needs the full image.

libjpeg can decode straight to a reduced size by scaling in the DCT domain (``cv2.IMREAD_REDUCED_COLOR_s``,
the flag that ``mmcv.imfrombytes`` passes through): less decoding and, above all, a resize step that reads
s^2 times fewer pixels. Reduced pixel (i, j) covers full pixels [s*i, s*i + s) x [s*j, s*j + s), so a box
of the full image is the box / s of the reduced one. A factor is only used when every box, at the reduced
scale, still spans at least ``gap`` x its output size in both directions: no crop is then upsampled, nor
cut from fewer pixels than ``gap`` times what it outputs (a box that the full decode would upsample keeps
the full decode).
"""
import io
from typing import Sequence, Tuple

import cv2
import mmcv
import numpy as np
from PIL import Image

REDUCED_FLAGS = {1: 'color', 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                 8: cv2.IMREAD_REDUCED_COLOR_8}
EXIF_ORIENTATION = 0x0112  # tag 274; values 5-8 rotate by 90 degrees
Box = Tuple[int, int, int, int]  # (x0, y0, x1, y1), pixels, end exclusive


def header_size(img_bytes: bytes) -> Tuple[int, int, bool]:
    """(height, width, is_jpeg) of an encoded image from its header (nothing is decoded).

    The size is the one that ``mmcv.imfrombytes(..., 'color')`` returns, i.e. after OpenCV applies the EXIF
    orientation (a quarter turn swaps the sides).
    """
    with Image.open(io.BytesIO(img_bytes)) as im:
        w, h = im.size
        is_jpeg = im.format == 'JPEG'
        if is_jpeg and im.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
            w, h = h, w
    return h, w, is_jpeg


def reduce_box(box: Box, scale: int) -> Box:
    """A full-image box on the grid of the image decoded at 1/``scale`` (rounded to whole pixels)."""
    return tuple(int(round(v / scale)) for v in box)


def decode_scale(boxes: Sequence[Box], sizes: Sequence[int], gap: float = 1.0) -> int:
    """The largest s in (8, 4, 2) at which every reduced box spans >= ``gap`` x its output size, else 1.

    Args:
        boxes: full-image boxes of the crops.
        sizes: output side of each crop in pixels.
        gap (float): >= 1; 1 is the least reduction-friendly rule that never upsamples a crop.
    """
    for scale in (8, 4, 2):
        reduced = [reduce_box(b, scale) for b in boxes]
        if all(min(x1 - x0, y1 - y0) >= gap * size for (x0, y0, x1, y1), size in zip(reduced, sizes)):
            return scale
    return 1


def decode(img_bytes: bytes, scale: int, full_size: Tuple[int, int]) -> np.ndarray:
    """BGR uint8 [ceil(H / scale), ceil(W / scale), 3] (``LoadImageFromFile``'s default decode, reduced).

    ``full_size`` = (H, W) from :func:`header_size`; a decoder that returns another size is an error.
    """
    img = mmcv.imfrombytes(img_bytes, flag=REDUCED_FLAGS[scale], backend='cv2')
    if img is None:
        raise ValueError(f'could not decode the image (decode scale 1/{scale})')
    h, w = full_size
    expected = (-(-h // scale), -(-w // scale))
    if img.shape[:2] != expected:
        raise ValueError(f'decoding at 1/{scale} gave {img.shape[:2]}, expected {expected} for a {h}x{w} image')
    return img
