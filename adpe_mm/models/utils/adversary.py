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


@torch.no_grad()
def pgd_step_(param: torch.Tensor, grad: Optional[torch.Tensor], step_size: float) -> torch.Tensor:
    """One projected gradient ascent step of an adversary, in place: ``step_size * eps`` along the steepest
    ascent direction of its own ball (``sign(g)`` for l_inf, ``g / ||g||`` for l2), then the projection onto
    the ball. A zero (or None) gradient leaves it where it is. The one PGD of the package: sequential mode
    (``MAEPlus.ascend_adversaries``) and the strength probe (``adpe_mm.analysis.adversary_probe``) use it."""
    if grad is not None:
        g = grad.detach().float()
        if param.adv_ball.norm == 'linf':
            g = g.sign()
        else:
            g = g / g.norm().clamp(min=torch.finfo(torch.float32).tiny)
        param.add_(g.to(param.dtype), alpha=step_size * param.adv_ball.eps)
    return project_(param)


PE_TYPES = ('ape', 'rpe')
MODES = ('embed', 'coord')
# How an RPE coordinate adversary reads the table past its last bucket (index_mode='relaxed' only; see
# adpe_mm/models/pos_embed/irpe.py): 'fade' continues the relaxed index to +-beta and fades to zero one bucket
# beyond the edge (the default), 'clamp' is the original lookup (index clamped to the last bucket), kept to
# reproduce runs made with it.
COORD_EDGES = ('fade', 'clamp')


def parse_adversary(cfg: Optional[dict]) -> Optional[dict]:
    """Validate an AdPE adversary config ``dict(pe='ape'|'rpe', mode='embed'|'coord', norm='l2'|'linf',
    eps=float)`` (RPE coordinate mode also takes ``edge='fade'|'clamp'``); return a normalised copy, or None
    for no adversary. Errors name the bad value."""
    if cfg is None:
        return None
    if not isinstance(cfg, dict):
        raise TypeError(f'adversary must be a dict or None, got {cfg!r}')
    unknown = set(cfg) - {'pe', 'mode', 'norm', 'eps', 'edge'}
    if unknown:
        raise ValueError(f'unknown adversary keys {sorted(unknown)} (expected pe, mode, norm, eps, edge)')
    if cfg.get('pe') not in PE_TYPES:
        raise ValueError(f'adversary pe must be one of {PE_TYPES}, got {cfg.get("pe")!r}')
    if cfg.get('mode') not in MODES:
        raise ValueError(f'adversary mode must be one of {MODES}, got {cfg.get("mode")!r}')
    ball = check_ball(cfg.get('norm'), cfg.get('eps'))
    out = dict(pe=cfg['pe'], mode=cfg['mode'], norm=ball.norm, eps=ball.eps)
    if cfg.get('edge') is not None:
        if (cfg['pe'], cfg['mode']) != ('rpe', 'coord'):
            raise ValueError(f"adversary edge={cfg['edge']!r} applies to pe='rpe', mode='coord' only, got "
                             f"pe={cfg['pe']!r}, mode={cfg['mode']!r}")
        if cfg['edge'] not in COORD_EDGES:
            raise ValueError(f'adversary edge must be one of {COORD_EDGES}, got {cfg["edge"]!r}')
        out['edge'] = cfg['edge']
    return out


def irpe_adversary(adversary: dict) -> dict:
    """The ``adversary`` kwarg of :class:`~adpe_mm.models.pos_embed.IRPE` for a parsed RPE adversary."""
    return {k: v for k, v in adversary.items() if k in ('mode', 'norm', 'eps', 'edge')}
