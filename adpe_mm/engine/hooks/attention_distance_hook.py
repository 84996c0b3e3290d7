"""Log the encoder's mean attention distance per block on a fixed probe batch during pretraining."""
from typing import Optional

from mmengine.hooks import Hook, LoggerHook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from ...analysis.attention_distance import attention_distance_per_layer

DEFAULT_INTERVAL = 50


@HOOKS.register_module()
class AttentionDistanceHook(Hook):
    """Every ``interval`` iterations, log ``train/attn_dist_layer{i}`` for every encoder block i.

    The value is the mean attention distance in patches (see :mod:`adpe_mm.analysis.attention_distance`),
    averaged over heads, query patches and the probe images, of the clean unmasked forward (all tokens
    visible, no adversary) in eval mode. The probe is the first ``num_images`` images (crops, for MAE+) of the
    first training batch, kept for the whole run, so the curve follows the model, not the data. Works for
    MAE (``MAEViT``) and MAE+/AdPE (``MAEPlusViT``) backbones.

    The values go to the message hub; the ``LoggerHook`` prints them and writes them to the json log
    (as their current value). Use an interval that is a multiple of the logger's, or the logged value is the
    latest one computed.

    Args:
        interval (int, optional): iterations between measurements. None (default): the ``LoggerHook``'s
            interval, or 50 without one.
        num_images (int): probe images. Defaults to 16.

    Examples:
        >>> custom_hooks = [dict(type='AttentionDistanceHook', interval=1000, num_images=32)]
    """
    priority = 'NORMAL'  # before LoggerHook (BELOW_NORMAL), which then prints this iteration's values

    def __init__(self, interval: Optional[int] = None, num_images: int = 16) -> None:
        if interval is not None and (not isinstance(interval, int) or interval <= 0):
            raise ValueError(f'interval must be a positive int or None, got {interval!r}')
        if not isinstance(num_images, int) or num_images <= 0:
            raise ValueError(f'num_images must be a positive int, got {num_images!r}')
        self.interval = interval
        self.num_images = num_images
        self._probe = None

    def before_train(self, runner) -> None:
        if self.interval is None:
            loggers = [hook for hook in runner.hooks if isinstance(hook, LoggerHook)]
            self.interval = loggers[0].interval if loggers else DEFAULT_INTERVAL

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._probe is None and data_batch is not None:
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            inputs = model.data_preprocessor(data_batch, False)['inputs']
            if isinstance(inputs, (list, tuple)):  # MAE+ crops: k tensors [B, 3, h, w]
                inputs = model.stack_crops(inputs)
            self._probe = inputs[:self.num_images].detach()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._probe is None or not self.every_n_train_iters(runner, self.interval):
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        distances = attention_distance_per_layer(model.backbone, self._probe).mean(dim=1)  # [num_layers]
        for i, value in enumerate(distances.tolist()):
            runner.message_hub.update_scalar(f'train/attn_dist_layer{i}', value)
