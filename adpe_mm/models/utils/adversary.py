"""Adversary parameters: the perturbations of AdPE and the ball each one lives in.

An adversary is an ordinary ``nn.Parameter`` owned by the model, registered under a name that starts with
``adv_`` (so ``paramwise_cfg.custom_keys={'adv_': ...}`` puts it in its own optimizer group), initialised to
zero and shared by the whole batch. It carries its constraint as the attribute ``adv_ball`` (an
:class:`AdversaryBall`), which is how the adversarial optimizer wrappers find and project it after every
step without being told eps twice.
"""
import math
from typing import NamedTuple, Optional, Sequence, Union

import torch
from torch import nn

ADV_PREFIX = 'adv_'
NORMS = ('l2', 'linf')


class AdversaryBall(NamedTuple):
    """The l2 or l_inf ball of radius ``eps`` that an adversary is projected onto.

    ``eps`` is in embedding units for embedding-mode adversaries and in patches for coordinate mode.
    """
    norm: str
    eps: float


def check_ball(norm: str, eps: float) -> AdversaryBall:
    """Validate a (norm, eps) pair from a config; raise ``ValueError`` naming the bad value."""
    if norm not in NORMS:
        raise ValueError(f'adversary norm must be one of {NORMS}, got {norm!r}')
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
        raise ValueError(f'adversary eps must be a finite number > 0, got {eps!r}')
    return AdversaryBall(norm, float(eps))


class AdversaryParameter(nn.Parameter):
    """An ``nn.Parameter`` that keeps its ``adv_ball`` through ``copy.deepcopy`` (of a model, by EMA hooks or
    tests): ``nn.Parameter.__deepcopy__`` drops Python attributes."""

    def __deepcopy__(self, memo):
        result = super().__deepcopy__(memo)
        result.adv_ball = self.adv_ball
        return result


def adversary_parameter(shape: Union[int, Sequence[int]], norm: str, eps: float) -> nn.Parameter:
    """A zero-initialised adversary of ``shape`` constrained to the ``norm`` ball of radius ``eps``."""
    param = AdversaryParameter(torch.zeros(shape))
    param.adv_ball = check_ball(norm, eps)
    return param


def is_adversary(param: torch.Tensor) -> bool:
    """True for parameters made by :func:`adversary_parameter`."""
    return isinstance(getattr(param, 'adv_ball', None), AdversaryBall)


@torch.no_grad()
def project_l2_(tensor: torch.Tensor, eps: float) -> torch.Tensor:
    """Scale ``tensor`` in place so that its l2 norm (over all elements) is at most ``eps``.

    ``min(1, eps / max(||p||, tiny))`` keeps an all-zero tensor at zero (no 0/0).
    """
    # float64 keeps the norm finite for any finite float32 tensor (float32 overflows past ~1.8e19).
    norm = torch.linalg.vector_norm(tensor.detach(), dtype=torch.float64)
    scale = torch.clamp(eps / torch.clamp(norm, min=torch.finfo(torch.float64).tiny), max=1.0)
    tensor.mul_(scale.to(tensor.dtype))
    return tensor


@torch.no_grad()
def project_linf_(tensor: torch.Tensor, eps: float) -> torch.Tensor:
    """Clamp ``tensor`` element-wise to [-eps, eps] in place."""
    return tensor.clamp_(-eps, eps)


def project_(param: torch.Tensor) -> torch.Tensor:
    """Project an adversary in place onto its own ball (see :class:`AdversaryBall`)."""
    ball = param.adv_ball
    if ball.norm == 'l2':
        return project_l2_(param.data, ball.eps)
    return project_linf_(param.data, ball.eps)


PE_TYPES = ('ape', 'rpe')
MODES = ('embed', 'coord')


def parse_adversary(cfg: Optional[dict]) -> Optional[dict]:
    """Validate an AdPE adversary config ``dict(pe='ape'|'rpe', mode='embed'|'coord', norm='l2'|'linf',
    eps=float)``; return a normalised copy, or None for no adversary. Errors name the bad value."""
    if cfg is None:
        return None
    if not isinstance(cfg, dict):
        raise TypeError(f'adversary must be a dict or None, got {cfg!r}')
    unknown = set(cfg) - {'pe', 'mode', 'norm', 'eps'}
    if unknown:
        raise ValueError(f'unknown adversary keys {sorted(unknown)} (expected pe, mode, norm, eps)')
    if cfg.get('pe') not in PE_TYPES:
        raise ValueError(f'adversary pe must be one of {PE_TYPES}, got {cfg.get("pe")!r}')
    if cfg.get('mode') not in MODES:
        raise ValueError(f'adversary mode must be one of {MODES}, got {cfg.get("mode")!r}')
    ball = check_ball(cfg.get('norm'), cfg.get('eps'))
    return dict(pe=cfg['pe'], mode=cfg['mode'], norm=ball.norm, eps=ball.eps)
