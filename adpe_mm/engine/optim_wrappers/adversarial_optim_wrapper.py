"""Optimizer wrappers that train AdPE's adversaries by gradient ascent in the same step as the weights.

The adversaries (parameters made by :func:`~adpe_mm.adversary.adversary_parameter`) sit in
their own param group(s) with ``maximize=True`` and ``weight_decay=0``, so the wrapped optimizer ascends on
them while it descends on the weights ("parallel mode" of the paper). What the wrappers add on top of
mmengine's :class:`OptimWrapper` / :class:`AmpOptimWrapper`:

- validation of those groups at construction (and after ``load_state_dict``);
- gradient clipping that sees only the ordinary parameters;
- an optional transform of the adversary gradients (``'sign'``, ``'l2_normalize'``, ``'ball'``) and an
  optional plain ascent update ``delta += lr * g`` in place of the optimizer's rule (PGD);
- an optional step size in units of the adversary's own ball (``adv_ball_steps``: cross the ball in N steps
  at the peak lr) in place of the paper's rule (adversary lr = weight lr);
- projection of every adversary onto its ball after every real optimizer step;
- a guard, installed at import for every torch optimizer in the process, that refuses the first step of an
  optimizer that holds adversaries but is not driven by one of these wrappers (a plain ``OptimWrapper``
  would make them descend, decay and never be projected), whatever hooks the config has.

The last two run in torch optimizer step hooks (``Optimizer.register_step_pre_hook`` /
``register_step_post_hook``), not in an overridden ``step``: ``GradScaler.step`` only calls
``optimizer.step`` when the gradients are finite, and it unscales them first, so the hooks see true
gradients and run exactly on real steps, in both wrappers, without re-implementing ``AmpOptimWrapper.step``
or reading the scaler's private state. Gradient accumulation and the update counting stay mmengine's.
"""
import weakref
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.device import (is_cuda_available, is_mlu_available, is_musa_available,
                             is_npu_available)
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmpretrain.registry import OPTIM_WRAPPERS
from torch import nn
from torch.optim import Optimizer
from torch.optim.optimizer import register_optimizer_step_pre_hook

from adpe_mm.adversary import adversary_norm, is_adversary, project_

ADV_GRAD_TRANSFORMS = (None, 'sign', 'l2_normalize', 'ball')
ADV_UPDATES = ('optimizer', 'ascent')


@torch.no_grad()
def transform_adversary_grad_(grad: torch.Tensor, transform: Optional[str], norm: Optional[str] = None
                              ) -> torch.Tensor:
    """Replace an adversary gradient in place by its sign or by itself over its l2 norm (whole tensor).

    ``'ball'`` is the steepest-ascent direction of the adversary's own ball (``norm``): the sign for l_inf,
    the l2-normalised gradient for l2, so that a step of size s moves the adversary by exactly s in its norm.
    """
    if transform == 'ball':
        if norm not in ('l2', 'linf'):
            raise ValueError(f"adv_grad_transform='ball' needs the adversary's ball norm, got {norm!r}")
        transform = 'sign' if norm == 'linf' else 'l2_normalize'
    if transform == 'sign':
        return grad.sign_()
    if transform == 'l2_normalize':
        norm = grad.detach().float().norm()
        # a zero gradient stays zero instead of becoming 0/0
        return grad.div_(torch.clamp(norm, min=torch.finfo(torch.float32).tiny).to(grad.dtype))
    return grad


# The torch optimizers whose adversaries an adversarial wrapper drives, and those the guard has cleared (with
# the number of param groups it saw, so that a group added later is checked too).
_ADVERSARIAL_OPTIMIZERS: 'weakref.WeakSet[Optimizer]' = weakref.WeakSet()
_CLEARED: 'weakref.WeakKeyDictionary[Optimizer, int]' = weakref.WeakKeyDictionary()
WRAPPER_HINT = ("optim_wrapper=dict(type='AdvOptimWrapper' (or 'AmpAdvOptimWrapper'), paramwise_cfg=dict("
                "custom_keys={'adv_': dict(decay_mult=0., maximize=True)}), ...)")


def refuse_unwrapped_adversaries(optimizer: Optimizer, args=(), kwargs=None) -> None:
    """Raise ``RuntimeError`` before the step of an optimizer that holds adversaries outside an adversarial
    wrapper, naming the param group, the adversaries and the wrapper to use.

    Installed with ``torch.optim.optimizer.register_optimizer_step_pre_hook`` when this module is imported, so
    it guards every optimizer (DDP or not, with or without ``AdversaryHook``); each optimizer is checked once
    (again when it gains a param group).
    """
    if _CLEARED.get(optimizer) == len(optimizer.param_groups):
        return
    if optimizer not in _ADVERSARIAL_OPTIMIZERS:
        for i, group in enumerate(optimizer.param_groups):
            advs = [p for p in group['params'] if is_adversary(p)]
            if advs:
                balls = [f'{tuple(p.shape)} in an {p.adv_ball.norm} ball of eps {p.adv_ball.eps:g}' for p in advs]
                raise RuntimeError(
                    f'param group {i} of {type(optimizer).__name__} holds adversaries ({"; ".join(balls)}) but no '
                    'adversarial optimizer wrapper drives it: with a plain OptimWrapper / AmpOptimWrapper they '
                    'would descend the loss, take weight decay and never be projected onto their ball. Use '
                    f'{WRAPPER_HINT}, or build the model without model.adversary')
    _CLEARED[optimizer] = len(optimizer.param_groups)


register_optimizer_step_pre_hook(refuse_unwrapped_adversaries)


class AdversaryOptimMixin:
    """The adversary logic shared by :class:`AdvOptimWrapper` and :class:`AmpAdvOptimWrapper`.

    Use it before an mmengine optimizer wrapper in the bases and call :meth:`_setup_adversaries` at the end
    of ``__init__``.
    """

    optimizer: Optimizer

    def _setup_adversaries(self, adv_grad_transform: Optional[str], adv_update: str,
                           adv_ball_steps: Optional[int] = None) -> None:
        if adv_grad_transform not in ADV_GRAD_TRANSFORMS:
            raise ValueError(f'adv_grad_transform must be one of {ADV_GRAD_TRANSFORMS}, '
                             f'got {adv_grad_transform!r}')
        if adv_update not in ADV_UPDATES:
            raise ValueError(f'adv_update must be one of {ADV_UPDATES}, got {adv_update!r}')
        if adv_ball_steps is not None and (isinstance(adv_ball_steps, bool) or not isinstance(adv_ball_steps, int)
                                           or adv_ball_steps <= 0):
            raise ValueError(f'adv_ball_steps must be a positive int or None, got {adv_ball_steps!r}')
        self.adv_grad_transform = adv_grad_transform
        self.adv_update = adv_update
        self.adv_ball_steps = adv_ball_steps
        self._check_param_groups()
        if adv_ball_steps is not None:
            self._set_ball_lrs(adv_ball_steps)
        _ADVERSARIAL_OPTIMIZERS.add(self.optimizer)
        # Gradients the optimizer must not see in 'ascent' mode, held from the pre- to the post-hook.
        self._hidden_adv_grads: List[Tuple[nn.Parameter, torch.Tensor]] = []
        self._adv_hook_handles = (
            self.optimizer.register_step_pre_hook(self._before_optimizer_step),
            self.optimizer.register_step_post_hook(self._after_optimizer_step),
        )

    @property
    def adversaries(self) -> List[nn.Parameter]:
        """The adversary parameters in the optimizer, in param-group order."""
        return [p for group in self._adversary_groups() for p in group['params']]

    def _adversary_groups(self) -> List[dict]:
        # looked up every time: load_state_dict replaces the group dicts
        return [g for g in self.optimizer.param_groups if any(is_adversary(p) for p in g['params'])]

    def _check_param_groups(self) -> None:
        """Raise ``ValueError`` unless every adversary sits alone in an ascending, decay-free group."""
        name = type(self).__name__
        hint = ("paramwise_cfg=dict(custom_keys={'adv_': dict(decay_mult=0., maximize=True)})")
        num_adversaries = 0
        for i, group in enumerate(self.optimizer.param_groups):
            advs = [p for p in group['params'] if is_adversary(p)]
            num_ordinary = len(group['params']) - len(advs)
            num_adversaries += len(advs)
            if not advs:
                if group.get('maximize', False):
                    raise ValueError(f'{name}: param group {i} has maximize=True but holds {num_ordinary} '
                                     'ordinary (non-adversary) parameter(s), which would ascend the loss; '
                                     "check which parameter names match the custom keys that set maximize")
                continue
            what = f'param group {i} (adversary shapes {[tuple(p.shape) for p in advs]})'
            if num_ordinary:
                raise ValueError(f'{name}: {what} mixes adversaries with {num_ordinary} ordinary '
                                 f'parameter(s); adversaries need groups of their own: {hint}')
            if group.get('maximize', False) is not True:
                raise ValueError(f'{name}: {what} does not have maximize=True, so the adversaries would '
                                 f'descend the loss instead of ascending it: {hint}. A longer custom key '
                                 "that also matches the adversary's name wins over 'adv_'.")
            if group.get('weight_decay', 0) != 0:
                raise ValueError(f'{name}: {what} has weight_decay={group["weight_decay"]}; adversaries '
                                 f'must not decay (decay_mult=0.): {hint}')
        if num_adversaries == 0:
            raise ValueError(f'{name}: the config asks for adversarial training but the model has no adv_ '
                             'parameters (none of the optimized parameters was made by '
                             'adversary_parameter); use OptimWrapper/AmpOptimWrapper for a model without '
                             'adversaries')
        if self.adv_update == 'optimizer' and 'maximize' not in self.optimizer.defaults:
            raise ValueError(f'{name}: {type(self.optimizer).__name__} has no maximize option and would '
                             "silently descend on the adversaries; use an optimizer that has one (SGD, Adam, "
                             "AdamW, ...) or adv_update='ascent'")

    def _set_ball_lrs(self, steps: int) -> None:
        """Give every adversary group the lr ``lr_mult * eps / steps``, ``lr_mult`` = its lr over the optimizer's
        base lr (the constructor's ``lr_mult``); the param schedulers then scale it like every group's lr."""
        base_lr = self.optimizer.defaults.get('lr')
        if not base_lr:
            raise ValueError(f'{type(self).__name__}: adv_ball_steps needs an optimizer with a base lr > 0 '
                             f'(got lr={base_lr!r}) to read the adversary groups\' lr_mult from')
        for i, group in enumerate(self._adversary_groups()):
            radii = sorted({p.adv_ball.eps for p in group['params']})
            if len(radii) > 1:
                raise ValueError(f'{type(self).__name__}: adv_ball_steps gives one lr per param group, but group '
                                 f'{i} holds adversaries of eps {radii}; give each eps its own custom key')
            group['lr'] = group['lr'] / base_lr * radii[0] / steps

    def _clip_grad(self) -> None:
        """Clip the gradients of the ordinary parameters only; adversary gradients are left as they are."""
        # mmengine clips every gradient in the optimizer; hide the adversaries' so that neither the total
        # norm nor the scaling involves them
        hidden = [(p, p.grad) for p in self.adversaries]
        for p, _ in hidden:
            p.grad = None
        try:
            super()._clip_grad()
        finally:
            for p, grad in hidden:
                p.grad = grad

    @torch.no_grad()
    def _before_optimizer_step(self, optimizer: Optimizer, args, kwargs) -> None:
        """Transform the adversary gradients; in 'ascent' mode take the step here and hide the gradients."""
        for group in self._adversary_groups():
            for p in group['params']:
                if p.grad is None:
                    continue
                transform_adversary_grad_(p.grad, self.adv_grad_transform, p.adv_ball.norm)
                if self.adv_update == 'ascent':
                    p.add_(p.grad, alpha=group['lr'])
                    self._hidden_adv_grads.append((p, p.grad))
                    p.grad = None  # the optimizer skips parameters without a gradient

    @torch.no_grad()
    def _after_optimizer_step(self, optimizer: Optimizer, args, kwargs) -> None:
        """Give back hidden gradients and project every adversary onto its ball."""
        for p, grad in self._hidden_adv_grads:
            p.grad = grad
        self._hidden_adv_grads = []
        for p in self.adversaries:
            project_(p)

    def load_state_dict(self, state_dict: dict) -> None:
        """Load as the base wrapper does, then re-check the groups that the state dict brought."""
        super().load_state_dict(state_dict)
        self._check_param_groups()

    def get_lr(self) -> Dict[str, List[float]]:
        """The base wrapper's lrs with the ordinary groups first: mmengine logs ``lr[0]`` as ``lr``, which
        must be a weight lr even when an adversary group comes first (its lr is logged as ``adv_lr``)."""
        res = super().get_lr()
        groups = self.optimizer.param_groups
        is_adv = [any(is_adversary(p) for p in g['params']) for g in groups]
        res['lr'] = [g['lr'] for g, adv in zip(groups, is_adv) if not adv] + \
            [g['lr'] for g, adv in zip(groups, is_adv) if adv]
        return res

    def get_adversary_stats(self) -> Dict[str, float]:
        """``adv_norm``: the largest adversary size, each in its ball's norm; ``adv_lr``: the lr of the
        first adversary group (all share it when they come from one custom key)."""
        norms = torch.stack([adversary_norm(p) for p in self.adversaries])
        return dict(adv_norm=float(norms.max()), adv_lr=float(self._adversary_groups()[0]['lr']))


@OPTIM_WRAPPERS.register_module()
class AdvOptimWrapper(AdversaryOptimMixin, OptimWrapper):
    """:class:`OptimWrapper` that ascends on the model's adversaries while it descends on the weights.

    The adversaries must be in param groups of their own with ``maximize=True`` and ``weight_decay=0``;
    mmengine's ``DefaultOptimWrapperConstructor`` builds them from ``custom_keys`` (it copies every key of a
    custom-key dict, ``maximize`` included, into the group; ``lr_mult`` sets the adversary lr, which then
    follows the same schedule as the weights). Construction raises ``ValueError`` when there are no
    adversaries, when an adversary group does not ascend or decays, when a group mixes adversaries with
    ordinary parameters, or when an ordinary parameter would ascend.

    After every real optimizer step each adversary is projected onto its ball. Gradient clipping
    (``clip_grad``) is computed and applied over the ordinary parameters only. ``accumulative_counts``
    works as in mmengine: the adversary steps once per optimizer step.

    Args:
        optimizer (Optimizer): The optimizer holding weights and adversaries (built by the constructor).
        adv_grad_transform (str, optional): Applied to the adversary gradients right before the update
            (after unscaling under AMP): ``None`` leaves them, ``'sign'`` takes their sign,
            ``'l2_normalize'`` divides each adversary's gradient by its l2 norm over the whole tensor, and
            ``'ball'`` does whichever of the two is steepest ascent in the adversary's own ball (sign for
            l_inf, l2-normalised for l2). Defaults to None.
        adv_update (str): ``'optimizer'`` lets the wrapped optimizer update the adversaries (AdamW moments,
            as the reference implementation does); ``'ascent'`` takes a plain ascent step
            ``delta += lr * g`` with the adversary group's (scheduled) lr and keeps no optimizer state for
            them. With ``adv_grad_transform='sign'`` this is l_inf PGD, with ``'l2_normalize'`` l2 PGD.
            Defaults to ``'optimizer'``.
        adv_ball_steps (int, optional): None (default) is the paper's rule: the adversary group's lr is the
            weights' lr times its ``lr_mult``, about lr per step whatever eps is. N sets that group's lr to
            ``lr_mult * eps / N`` instead, still scaled by the same warmup + cosine schedule, so at the peak
            lr the adversary crosses its ball (centre to boundary) in N steps whatever eps and the weights'
            lr are. With ``adv_update='ascent'`` and ``adv_grad_transform='ball'`` a step is exactly that
            long in the ball's norm; with the optimizer's AdamW rule it is about that long per coordinate.
        **kwargs: ``accumulative_counts`` and ``clip_grad`` of :class:`OptimWrapper`.

    Examples:
        >>> # default: AdamW ascends on the adversaries with the weights' lr and schedule
        >>> optim_wrapper = dict(
        >>>     type='AdvOptimWrapper',
        >>>     optimizer=dict(type='AdamW', lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05),
        >>>     paramwise_cfg=dict(custom_keys={
        >>>         'adv_': dict(decay_mult=0., maximize=True, lr_mult=1.0)}))
        >>> # signed-gradient PGD with step 0.5 * lr, weights still on AdamW
        >>> optim_wrapper = dict(
        >>>     type='AdvOptimWrapper', adv_grad_transform='sign', adv_update='ascent',
        >>>     optimizer=dict(type='AdamW', lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05),
        >>>     paramwise_cfg=dict(custom_keys={
        >>>         'adv_': dict(decay_mult=0., maximize=True, lr_mult=0.5)}))
        >>> # PGD in the adversary's own ball, crossing it in 10 steps at the peak lr
        >>> optim_wrapper = dict(
        >>>     type='AdvOptimWrapper', adv_grad_transform='ball', adv_update='ascent', adv_ball_steps=10,
        >>>     optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05),
        >>>     paramwise_cfg=dict(custom_keys={'adv_': dict(decay_mult=0., maximize=True)}))
    """

    def __init__(self,
                 optimizer: Optimizer,
                 adv_grad_transform: Optional[str] = None,
                 adv_update: str = 'optimizer',
                 adv_ball_steps: Optional[int] = None,
                 **kwargs):
        super().__init__(optimizer=optimizer, **kwargs)
        self._setup_adversaries(adv_grad_transform, adv_update, adv_ball_steps)


def has_amp_device() -> bool:
    # the devices AmpOptimWrapper accepts
    return is_cuda_available() or is_npu_available() or is_mlu_available() or is_musa_available()


@OPTIM_WRAPPERS.register_module()
class AmpAdvOptimWrapper(AdversaryOptimMixin, AmpOptimWrapper):
    """:class:`AmpOptimWrapper` with the adversary handling of :class:`AdvOptimWrapper`.

    A step that the ``GradScaler`` skips (inf/NaN gradients) skips the adversaries too: their transform,
    ascent step and projection run inside ``optimizer.step``, which the scaler does not call then.

    mmengine's ``AmpOptimWrapper`` refuses to be built without a GPU/NPU/MLU/MUSA. Without one this class
    builds anyway, with ``torch.amp.GradScaler('cpu')`` and bfloat16 autocast (mmengine's ``autocast``
    accepts only bfloat16 on CPU), so that the AMP path runs and is tested on CPU machines. bfloat16 has the
    range of float32 and does not need loss scaling, but a scaler is harmless and keeps the overflow check.

    Args:
        optimizer (Optimizer): The optimizer holding weights and adversaries.
        adv_grad_transform (str, optional): See :class:`AdvOptimWrapper`. Defaults to None.
        adv_update (str): See :class:`AdvOptimWrapper`. Defaults to ``'optimizer'``.
        adv_ball_steps (int, optional): See :class:`AdvOptimWrapper`. Defaults to None (the paper's rule).
        loss_scale (str | float | dict): ``'dynamic'``, a static scale, or ``GradScaler`` kwargs.
            Defaults to ``'dynamic'``.
        dtype (str | torch.dtype, optional): Autocast dtype; on CPU only None or bfloat16.
            Defaults to None.
        use_fsdp (bool): Use ``ShardedGradScaler`` (not on CPU). Defaults to False.
        **kwargs: ``accumulative_counts`` and ``clip_grad`` of :class:`OptimWrapper`.

    Examples:
        >>> optim_wrapper = dict(
        >>>     type='AmpAdvOptimWrapper', loss_scale='dynamic',
        >>>     optimizer=dict(type='AdamW', lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05),
        >>>     paramwise_cfg=dict(custom_keys={'adv_': dict(decay_mult=0., maximize=True)}))
    """

    def __init__(self,
                 optimizer: Optimizer,
                 adv_grad_transform: Optional[str] = None,
                 adv_update: str = 'optimizer',
                 adv_ball_steps: Optional[int] = None,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = None,
                 use_fsdp: bool = False,
                 **kwargs):
        if has_amp_device():
            super().__init__(
                optimizer=optimizer, loss_scale=loss_scale, dtype=dtype, use_fsdp=use_fsdp, **kwargs)
        else:
            OptimWrapper.__init__(self, optimizer=optimizer, **kwargs)
            self._init_cpu_amp(loss_scale, dtype, use_fsdp)
        self._setup_adversaries(adv_grad_transform, adv_update, adv_ball_steps)

    def _init_cpu_amp(self, loss_scale: Union[str, float, dict], dtype: Union[str, torch.dtype, None],
                      use_fsdp: bool) -> None:
        """Set the attributes ``AmpOptimWrapper.__init__`` sets, with a CPU ``GradScaler``."""
        if use_fsdp:
            raise ValueError('use_fsdp=True needs a GPU')
        self._scale_update_param = None
        if loss_scale == 'dynamic':
            self.loss_scaler = torch.amp.GradScaler('cpu')
        elif isinstance(loss_scale, float):
            self._scale_update_param = loss_scale
            self.loss_scaler = torch.amp.GradScaler('cpu', init_scale=loss_scale)
        elif isinstance(loss_scale, dict):
            self.loss_scaler = torch.amp.GradScaler('cpu', **loss_scale)
        else:
            raise TypeError(f'loss_scale must be a float, a dict or "dynamic", got {loss_scale!r}')
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype, None)
        if dtype not in (None, torch.bfloat16):
            raise ValueError(f'autocast on CPU supports only bfloat16, got dtype={dtype}')
        self.cast_dtype = dtype
