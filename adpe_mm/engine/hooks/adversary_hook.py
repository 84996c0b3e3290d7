"""A hook that makes sure the adversaries are trained adversarially and logs their size and lr."""
from typing import List, Optional

from mmengine.hooks import Hook, LoggerHook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmpretrain.registry import HOOKS

from adpe_mm.engine.optim_wrappers import WRAPPER_HINT, AdversaryOptimMixin
from adpe_mm.adversary import is_adversary

DEFAULT_INTERVAL = 50


@HOOKS.register_module()
class AdversaryHook(Hook):
    """Check the adversary/optimizer-wrapper pairing before training; log ``adv_norm`` and ``adv_lr``.

    ``before_train`` raises ``RuntimeError`` when the model has adversaries (``adv_`` parameters) but the
    optimizer wrapper is not an adversarial one (they would descend the loss like any weight), or when an
    adversary is missing from the optimizer. (The first case is refused without this hook too, at the first
    optimizer step, by :func:`~adpe_mm.engine.optim_wrappers.refuse_unwrapped_adversaries`; the hook says it
    before training, with the parameter names.) The opposite mistake, an adversarial wrapper without
    adversaries, is already a ``ValueError`` of the wrapper. Models without adversaries with a plain wrapper
    pass and log nothing, so the hook may stay in a shared base config.

    Every ``interval`` iterations ``train/adv_norm`` (the largest adversary size, each in its ball's norm:
    l2 for l2 balls, max-abs for l_inf) and ``train/adv_lr`` go to the message hub, where the standard
    ``LoggerHook`` prints them (``adv_lr`` among the learning rates, both as their current value).

    A clean-vs-adversarial loss gap needs no hook: a key the model returns from ``loss()`` is logged as is.
    It must be detached and named without ``loss`` in it (e.g. ``adv_gap``), because
    ``BaseModel.parse_losses`` adds every ``*loss*`` key to the optimized total.

    Args:
        interval (int, optional): Logging interval in iterations. Defaults to None: the ``LoggerHook``'s
            interval, or 50 without a ``LoggerHook``.

    Examples:
        >>> custom_hooks = [dict(type='AdversaryHook')]
    """

    priority = 'NORMAL'  # before LoggerHook (BELOW_NORMAL), which then prints this iteration's values

    def __init__(self, interval: Optional[int] = None):
        if interval is not None and (not isinstance(interval, int) or interval <= 0):
            raise ValueError(f'interval must be a positive int or None, got {interval!r}')
        self.interval = interval
        self._wrappers: List[AdversaryOptimMixin] = []

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        adversaries = [(name, p) for name, p in model.named_parameters() if is_adversary(p)]
        optim_wrapper = runner.optim_wrapper
        wrappers = list(optim_wrapper.values()) if isinstance(optim_wrapper, OptimWrapperDict) \
            else [optim_wrapper]
        self._wrappers = [w for w in wrappers if isinstance(w, AdversaryOptimMixin)]
        if adversaries and not self._wrappers:
            names = [name for name, _ in adversaries]
            raise RuntimeError(
                f'the model has adversaries {names} but the optimizer wrapper is '
                f'{type(optim_wrapper).__name__}, which would make them descend the loss; use {WRAPPER_HINT}')
        optimized = {id(p) for w in self._wrappers for p in w.adversaries}
        missing = [name for name, p in adversaries if id(p) not in optimized]
        if missing:
            raise RuntimeError(f'adversaries {missing} are not in any adversarial optimizer wrapper')
        if self.interval is None:
            loggers = [hook for hook in runner.hooks if isinstance(hook, LoggerHook)]
            self.interval = loggers[0].interval if loggers else DEFAULT_INTERVAL

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self._wrappers:
            return
        # the LoggerHook's own trigger, so the printed values are this iteration's
        if not (self.every_n_inner_iters(batch_idx, self.interval)
                or self.end_of_epoch(runner.train_dataloader, batch_idx)):
            return
        stats = [w.get_adversary_stats() for w in self._wrappers]
        runner.message_hub.update_scalar('train/adv_norm', max(s['adv_norm'] for s in stats))
        runner.message_hub.update_scalar('train/adv_lr', stats[0]['adv_lr'])
