"""A hook that stops training at the first non-finite loss or weight, before anything saves the bad state."""
import logging
import math
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch import nn
from torch.nn.utils import get_total_norm

from adpe_mm.adversary import adversary_norm, is_adversary

ACTIONS = ('stop', 'skip')


class NonFiniteTrainingError(RuntimeError):
    """Raised by :class:`FiniteLossHook` when a loss term or the weights became NaN or inf."""


def loss_terms(outputs: Optional[Mapping]) -> Dict[str, torch.Tensor]:
    """The ``*loss*`` entries of a train step's log vars (mmengine sums exactly these into the total)."""
    if not outputs:
        return {}
    return {k: torch.as_tensor(v).detach() for k, v in outputs.items() if 'loss' in k}


def is_finite(value: torch.Tensor) -> bool:
    return bool(torch.isfinite(value).all())


def format_value(value: torch.Tensor) -> str:
    return f'{value.item():.4g}' if value.numel() == 1 else str(value.tolist())


def non_finite_parameters(model: nn.Module) -> List[str]:
    """Names of the parameters of ``model`` that hold a NaN or an inf."""
    return [name for name, p in model.named_parameters() if not is_finite(p.detach())]


def adversary_norms(model: nn.Module) -> Dict[str, Tuple[float, str, float]]:
    """Adversary name -> (its size in its ball's norm, the norm, eps), for every adversary of ``model``."""
    return {name: (adversary_norm(p).item(), p.adv_ball.norm, p.adv_ball.eps)
            for name, p in model.named_parameters() if is_adversary(p)}


@HOOKS.register_module()  # mmengine's root registry: the plain name works under the mmdet / mmseg scopes too
class FiniteLossHook(Hook):
    """Stop training with :class:`NonFiniteTrainingError` as soon as a loss term or a weight is NaN or inf.

    Without it a diverged run logs ``loss: nan`` to the last iteration, saves NaN checkpoints over the good
    ones (``max_keep_ckpts``) and exits 0. After every train iteration the hook checks

    1. every ``*loss*`` term of the iteration's log vars (the ``outputs`` of ``after_train_iter``), and
    2. with ``check_weights``, the parameters after the optimizer step (one max-abs reduction over all of
       them). This is needed: a finite but huge loss can give overflowing gradients, and the step then
       writes NaN weights that only the *next* iteration's loss would show, one checkpoint too late.

    It runs at priority ``HIGH``, after ``RuntimeInfoHook`` and before the EMA, logger, scheduler and
    checkpoint hooks, so an error raised here leaves the last checkpoint (``last_ckpt`` in the message hub)
    the last good one and ``last_checkpoint`` naming it. The message names the iteration (1-based, as in
    ``iter_<n>.pth``), every loss term with its value, the non-finite parameters, and the adversary sizes
    (each in its ball's norm), and is logged as an error before it is raised. Under distributed training the
    verdict is all-reduced, so every rank stops at the same iteration.

    What ``action='skip'`` can and cannot do: the hook runs after mmengine's ``train_step``, so the optimizer
    step of a non-finite loss has already been applied when it sees the loss; nothing is undone. With
    ``'skip'`` a non-finite loss is logged as a warning and training goes on *only while the weights are
    still finite*, i.e. when the optimizer wrapper itself did not apply the step (``AmpOptimWrapper``'s loss
    scaler skips steps with non-finite gradients, which is routine in fp16) or the non-finite term carried no
    gradient. Non-finite weights always stop training, whatever ``action``: every later step and checkpoint
    would be NaN too. With a plain ``OptimWrapper`` a NaN loss gives NaN gradients and NaN weights, so
    ``'skip'`` stops at the same iteration as ``'stop'``.

    Args:
        action (str): ``'stop'`` (default): raise at the first non-finite loss term. ``'skip'``: warn and go
            on while the weights stay finite (see above).
        check_weights (bool): also check the weights after every step. Defaults to True. Costs one pass over
            the parameters per iteration; with False the weights are checked only on iterations with a
            non-finite loss.

    Examples:
        >>> default_hooks = dict(finite_loss=dict(type='FiniteLossHook', action='stop'))
    """

    priority = 'HIGH'  # before NORMAL (EMAHook), BELOW_NORMAL (LoggerHook), VERY_LOW (CheckpointHook)

    def __init__(self, action: str = 'stop', check_weights: bool = True):
        if action not in ACTIONS:
            raise ValueError(f'action must be one of {ACTIONS}, got {action!r}')
        self.action = action
        self.check_weights = bool(check_weights)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        terms = loss_terms(outputs)
        bad_loss = not all(is_finite(v) for v in terms.values())
        bad_weights = (self.check_weights or bad_loss) and not self._weights_finite(model)
        verdict = torch.tensor([float(bad_loss), float(bad_weights)])
        if get_world_size() > 1:  # the weights are the same on every rank, a loss may be bad on one only
            all_reduce(verdict, op='max')
        bad_loss, bad_weights = bool(verdict[0]), bool(verdict[1])
        if not (bad_loss or bad_weights):
            return
        message = self.describe(runner, model, terms, bad_loss, bad_weights)
        if self.action == 'skip' and not bad_weights:
            print_log(f'{message}. The weights are still finite (the optimizer wrapper did not apply this '
                      'step, or the term had no gradient): going on (FiniteLossHook action=skip)',
                      logger='current', level=logging.WARNING)
            return
        print_log(message, logger='current', level=logging.ERROR)
        raise NonFiniteTrainingError(message)

    @staticmethod
    def _weights_finite(model: nn.Module) -> bool:
        params = [p.detach() for p in model.parameters()]
        # max-abs propagates NaN and inf and, unlike an l2 norm, does not overflow on finite weights
        return not params or math.isfinite(get_total_norm(params, norm_type=math.inf).item())

    def describe(self, runner, model: nn.Module, terms: Mapping[str, torch.Tensor], bad_loss: bool,
                 bad_weights: bool) -> str:
        """The one-paragraph report: where, which losses and weights, the adversaries, the last checkpoint."""
        where = f'iteration {runner.iter + 1}'
        max_iters = getattr(runner, 'max_iters', None)
        if max_iters:
            where += f' of {max_iters}'
        losses = ', '.join(f'{k}={format_value(v)}' for k, v in terms.items()) or 'no loss terms'
        if bad_loss:
            local = any(not is_finite(v) for v in terms.values())
            what = 'non-finite loss' if local else 'non-finite loss on another rank'
            head = f'{what} at {where}: {losses}'
        else:
            head = f'non-finite weights after the optimizer step of {where} (the loss was finite: {losses}; ' \
                   'the gradients overflowed)'
        parts = [f'FiniteLossHook: {head}']
        bad_params = non_finite_parameters(model)
        if bad_params:
            shown = ', '.join(bad_params[:5]) + (f', ... ({len(bad_params) - 5} more)' if len(bad_params) > 5
                                                 else '')
            parts.append(f'non-finite parameters: {len(bad_params)} ({shown})')
        norms = adversary_norms(model)
        if norms:
            parts.append('adversary norms: ' + ', '.join(f'{name}={value:.4g} ({norm} ball, eps {eps:g})'
                                                         for name, (value, norm, eps) in norms.items()))
        else:
            parts.append('adversary norms: the model has no adversaries')
        last_ckpt = runner.message_hub.get_info('last_ckpt')
        if last_ckpt:
            parts.append(f'the last good checkpoint, {last_ckpt}, is untouched (nothing was saved after it)')
        else:
            parts.append('no checkpoint had been saved yet, none was saved now')
        return '; '.join(parts)
