"""MAE+'s multi-crop tokenisation input: k random 112 px crops of every image."""
from typing import Sequence, Tuple

from mmcv.transforms import BaseTransform, Compose
from mmpretrain.registry import TRANSFORMS

CROP_MODES = ('independent', 'paper')


@TRANSFORMS.register_module()
class MultiCrop(BaseTransform):
    """Replace ``results['img']`` by a list of ``num_crops`` random crops of it, each with its own flip.

    Two ways to draw the crops:

    * ``'independent'`` (default, what produced the paper's numbers): every crop is its own
      ``RandomResizedCrop(crop_size, scale, ratio)`` of the decoded image, then ``RandomFlip(flip_prob)``.
    * ``'paper'`` (the paper's wording): one ``RandomResizedCrop(base_size, base_scale)``, then ``num_crops``
      random ``crop_size`` sub-crops of it, each with its own flip.

    The crops are independent samples: the model stacks them along the batch (crop-major).

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
                 base_scale: Sequence[float] = (0.2, 1.0)) -> None:
        if isinstance(num_crops, bool) or not isinstance(num_crops, int) or num_crops < 1:
            raise ValueError(f'num_crops (k) must be an integer >= 1, got {num_crops!r}')
        if isinstance(crop_size, bool) or not isinstance(crop_size, int) or crop_size < 1:
            raise ValueError(f'crop_size must be a positive integer, got {crop_size!r}')
        if mode not in CROP_MODES:
            raise ValueError(f'MultiCrop mode must be one of {CROP_MODES}, got {mode!r}')
        if mode == 'paper' and base_size < crop_size:
            raise ValueError(f'base_size={base_size} must be >= crop_size={crop_size} in paper mode')
        self.num_crops = num_crops
        self.crop_size = crop_size
        self.mode = mode
        flip = dict(type='RandomFlip', prob=flip_prob, direction='horizontal')
        if mode == 'independent':
            self.base = None
            first = dict(type='RandomResizedCrop', scale=crop_size, crop_ratio_range=tuple(scale),
                         aspect_ratio_range=tuple(ratio), interpolation=interpolation)
        else:
            self.base = TRANSFORMS.build(
                dict(type='RandomResizedCrop', scale=base_size, crop_ratio_range=tuple(base_scale),
                     aspect_ratio_range=tuple(ratio), interpolation=interpolation))
            first = dict(type='RandomCrop', crop_size=crop_size)
        self.crop = Compose([TRANSFORMS.build(first), TRANSFORMS.build(flip)])

    def transform(self, results: dict) -> dict:
        source = self.base(results.copy()) if self.base is not None else results
        # A shallow copy per crop is enough: the crop and flip transforms write new arrays.
        crops = [self.crop(source.copy())['img'] for _ in range(self.num_crops)]
        results['img'] = crops
        results['img_shape'] = crops[0].shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_crops={self.num_crops}, crop_size={self.crop_size}, '
                f'mode={self.mode!r}, crop={self.crop})')
