"""MAE+'s multi-crop tokenisation input: k random 112 px crops of every image."""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.image import imflip
from mmcv.transforms import BaseTransform
from mmengine import fileio
from mmpretrain.registry import TRANSFORMS

from .reduced_decode import Box, decode, decode_scale, header_size, reduce_box
from .resized_crop import check_resize_backend, resized_crop

CROP_MODES = ('independent', 'paper')


@TRANSFORMS.register_module()
class MultiCrop(BaseTransform):
    """Replace ``results['img']`` by a list of ``num_crops`` random crops of it, each with its own flip.

    Two ways to draw the crops:

    * ``'independent'`` (default, what produced the paper's numbers): every crop is its own
      ``RandomResizedCrop(crop_size, scale, ratio)`` of the decoded image, then a horizontal flip with
      probability ``flip_prob``.
    * ``'paper'`` (the paper's wording): one ``RandomResizedCrop(base_size, base_scale)``, then ``num_crops``
      random ``crop_size`` sub-crops of it, each with its own flip.

    The crop boxes are drawn by mmpretrain's ``RandomResizedCrop`` / ``RandomCrop`` (their
    ``rand_crop_params``); the resize is antialiased by default, like PIL's (see ``resized_crop.py``).
    The crops are independent samples: the model stacks them along the batch (crop-major).

    Besides ``img`` (list of k uint8 [crop_size, crop_size, 3] arrays, the input's channel order) and
    ``img_shape``, the results get ``crop_boxes`` (float [k, 4]: x0, y0, x1, y1 of each crop in pixels of
    the full-size image, end exclusive), ``crop_flips`` (bool [k]) and ``decode_scale`` (1, or the JPEG
    reduction factor of ``reduced_decode``).

    Args:
        num_crops (int): k >= 1. Defaults to 4.
        crop_size (int): crop side in pixels. Defaults to 112.
        scale (tuple): area range of the independent crops. Defaults to (0.08, 1.0).
        ratio (tuple): aspect-ratio range of the resized crops. Defaults to (3/4, 4/3).
        interpolation (str): resize interpolation. Defaults to 'bicubic'.
        flip_prob (float): horizontal flip probability of every crop. Defaults to 0.5.
        mode (str): 'independent' or 'paper'. Defaults to 'independent'.
        base_size (int): size of the base crop in 'paper' mode. Defaults to 224.
        base_scale (tuple): area range of the base crop in 'paper' mode. Defaults to (0.2, 1.0).
        backend (str): resize kernel: 'torch' (antialiased, within 2 grey levels of PIL, fastest),
            'pillow' (PIL itself, via mmcv) or 'cv2' (OpenCV bicubic without antialiasing: aliases when
            downscaling; the behaviour before antialiasing became the default). Defaults to 'torch'.
        reduced_decode (bool | float): decode the file here (no ``LoadImageFromFile`` before this transform;
            reads ``results['img_path']``), at 1/2, 1/4 or 1/8 of its size when every crop box still spans
            >= ``gap`` x ``crop_size`` pixels of the reduced image (True: gap 1, i.e. never upsample from
            fewer pixels than the full decode; a float >= 1: that gap). Independent mode only.
            Defaults to False (use the decoded ``results['img']``).
        backend_args (dict, optional): file backend arguments of ``reduced_decode``'s read (as in
            ``LoadImageFromFile``). Defaults to None.
    """

    def __init__(self,
                 num_crops: int = 4,
                 crop_size: int = 112,
                 scale: Tuple[float, float] = (0.08, 1.0),
                 ratio: Tuple[float, float] = (3. / 4., 4. / 3.),
                 interpolation: str = 'bicubic',
                 flip_prob: float = 0.5,
                 mode: str = 'independent',
                 base_size: int = 224,
                 base_scale: Sequence[float] = (0.2, 1.0),
                 backend: str = 'torch',
                 reduced_decode: Union[bool, float] = False,
                 backend_args: Optional[dict] = None) -> None:
        if isinstance(num_crops, bool) or not isinstance(num_crops, int) or num_crops < 1:
            raise ValueError(f'num_crops (k) must be an integer >= 1, got {num_crops!r}')
        if isinstance(crop_size, bool) or not isinstance(crop_size, int) or crop_size < 1:
            raise ValueError(f'crop_size must be a positive integer, got {crop_size!r}')
        if mode not in CROP_MODES:
            raise ValueError(f'MultiCrop mode must be one of {CROP_MODES}, got {mode!r}')
        if mode == 'paper' and base_size < crop_size:
            raise ValueError(f'base_size={base_size} must be >= crop_size={crop_size} in paper mode')
        check_resize_backend(backend, interpolation)
        if reduced_decode is True:
            reduced_decode = 1.0
        if reduced_decode is not False and (not isinstance(reduced_decode, (int, float)) or reduced_decode < 1):
            raise ValueError(f'reduced_decode must be False, True or a gap >= 1, got {reduced_decode!r}')
        if reduced_decode and mode != 'independent':
            raise ValueError(f"reduced_decode={reduced_decode!r} needs mode='independent', got {mode!r}")
        self.num_crops = num_crops
        self.crop_size = crop_size
        self.mode = mode
        self.base_size = base_size
        self.interpolation = interpolation
        self.flip_prob = flip_prob
        self.backend = backend
        self.gap = float(reduced_decode) if reduced_decode else None
        self.backend_args = backend_args
        # Only their rand_crop_params are used: the box sampling of the stock transforms.
        size, area = (crop_size, scale) if mode == 'independent' else (base_size, base_scale)
        self.box_sampler = TRANSFORMS.build(dict(type='RandomResizedCrop', scale=size,
                                                 crop_ratio_range=tuple(area), aspect_ratio_range=tuple(ratio)))
        self.sub_crop_sampler = TRANSFORMS.build(dict(type='RandomCrop', crop_size=crop_size))

    # ---- the stages (separate methods so that tools/analysis_tools/benchmark_pipeline.py can time them)

    def _draw_box(self, height: int, width: int) -> Box:
        """One random resized crop box of an image of that size."""
        shape_only = np.empty((height, width, 0), np.uint8)  # rand_crop_params reads only the shape
        y0, x0, h, w = self.box_sampler.rand_crop_params(shape_only)
        return x0, y0, x0 + w, y0 + h

    def _read(self, results: dict) -> Tuple[bytes, int, int, bool]:
        """The file of ``img_path`` and its header: bytes, full height and width, whether it is a JPEG."""
        if 'img' in results:
            raise ValueError('MultiCrop(reduced_decode=...) decodes the file itself: remove the '
                             'LoadImageFromFile before it')
        img_bytes = fileio.get(results['img_path'], backend_args=self.backend_args)
        return (img_bytes, *header_size(img_bytes))

    def _decode(self, img_bytes: bytes, scale: int, full_size: Tuple[int, int]) -> np.ndarray:
        return decode(img_bytes, scale, full_size)  # BGR [ceil(H / scale), ceil(W / scale), 3]

    def _resized_crop(self, img: np.ndarray, box: Box, size: int) -> np.ndarray:
        return resized_crop(img, box, size, self.interpolation, self.backend)

    def _flip(self, crop: np.ndarray) -> np.ndarray:
        return imflip(crop, 'horizontal')  # a view; PackInputs makes the one contiguous copy

    # ---- the transform

    def _independent_crops(self, results: dict) -> Tuple[List[np.ndarray], np.ndarray, int]:
        if self.gap is not None:
            # boxes first, from the header; then the decode at the scale they allow
            img_bytes, h, w, is_jpeg = self._read(results)
            boxes = [self._draw_box(h, w) for _ in range(self.num_crops)]
            scale = decode_scale(boxes, [self.crop_size] * self.num_crops, self.gap) if is_jpeg else 1
            img = self._decode(img_bytes, scale, (h, w))
            grid_boxes = [reduce_box(b, scale) for b in boxes]  # on the reduced image's grid
            results['ori_shape'] = (h, w)
        else:
            img = results['img']
            grid_boxes = [self._draw_box(*img.shape[:2]) for _ in range(self.num_crops)]
            scale = 1
        crops = [self._resized_crop(img, b, self.crop_size) for b in grid_boxes]
        # the regions actually read, in full-image pixels (a reduced box times its scale)
        return crops, np.array(grid_boxes, np.float64) * scale, scale

    def _paper_crops(self, results: dict) -> Tuple[List[np.ndarray], np.ndarray, int]:
        x0, y0, x1, y1 = base_box = self._draw_box(*results['img'].shape[:2])
        base = self._resized_crop(results['img'], base_box, self.base_size)  # [base_size, base_size, 3]
        crops, boxes = [], []
        step = np.array([x1 - x0, y1 - y0, x1 - x0, y1 - y0]) / self.base_size  # source px per base px
        for _ in range(self.num_crops):
            top, left, h, w = self.sub_crop_sampler.rand_crop_params(base)
            crops.append(base[top:top + h, left:left + w])
            boxes.append(np.array([x0, y0, x0, y0]) + step * np.array([left, top, left + w, top + h]))
        return crops, np.stack(boxes), 1

    def transform(self, results: dict) -> dict:
        make = self._independent_crops if self.mode == 'independent' else self._paper_crops
        crops, boxes, scale = make(results)
        flips = np.random.rand(self.num_crops) < self.flip_prob
        results['img'] = [self._flip(c) if f else c for c, f in zip(crops, flips)]
        results['img_shape'] = crops[0].shape[:2]
        results['crop_boxes'] = boxes
        results['crop_flips'] = flips
        results['decode_scale'] = scale
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_crops={self.num_crops}, crop_size={self.crop_size}, '
                f'mode={self.mode!r}, backend={self.backend!r}, interpolation={self.interpolation!r}, '
                f'flip_prob={self.flip_prob}, reduced_decode={self.gap or False})')
