"""The ball an adversary lives in: its parameter type, size, projection and one projected-ascent step.

An adversary is an ordinary ``nn.Parameter`` owned by the model, registered under a name that starts with
``adv_`` (so ``paramwise_cfg.custom_keys={'adv_': ...}`` puts it in its own optimizer group), initialised to
zero. It carries its constraint as the attribute ``adv_ball`` (an :class:`AdversaryBall`), which is how the
adversarial optimizer wrappers find and project it after every step without being told eps twice.

Every function here also takes a plain tensor with an explicit ``ball``, and a ``batch_dims`` count of
leading dimensions that index independent adversaries (a per-sample adversary [B, 2] is B balls of shape
[2]): a fresh or per-sample attack (:mod:`adpe_mm.adversary.attack`) works on such values.
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


def _ball(tensor: torch.Tensor, ball: Optional[AdversaryBall]) -> AdversaryBall:
    ball = getattr(tensor, 'adv_ball', None) if ball is None else ball
    if not isinstance(ball, AdversaryBall):
        raise TypeError(f'a tensor of shape {tuple(tensor.shape)} without an adv_ball needs an explicit ball')
    return ball


def _dims(tensor: torch.Tensor, batch_dims: int) -> tuple:
    return tuple(range(batch_dims, tensor.dim()))


@torch.no_grad()
def adversary_norm(tensor: torch.Tensor, ball: Optional[AdversaryBall] = None, batch_dims: int = 0
                   ) -> torch.Tensor:
    """Size of an adversary in its ball's norm (l2 over its elements, or max-abs for l_inf), float32 of shape
    ``tensor.shape[:batch_dims]`` (0-dim for one adversary)."""
    t = tensor.detach().float()
    if _ball(tensor, ball).norm == 'l2':
        return torch.linalg.vector_norm(t, dim=_dims(t, batch_dims))
    return t.abs().amax(dim=_dims(t, batch_dims))


@torch.no_grad()
def project_l2_(tensor: torch.Tensor, eps: float, batch_dims: int = 0) -> torch.Tensor:
    """Scale ``tensor`` in place so that its l2 norm (over all elements, or per leading index) is at most eps.

    ``min(1, eps / max(||p||, tiny))`` keeps an all-zero tensor at zero (no 0/0).
    """
    # float64 keeps the norm finite for any finite float32 tensor (float32 overflows past ~1.8e19).
    norm = torch.linalg.vector_norm(tensor.detach(), dim=_dims(tensor, batch_dims), keepdim=True,
                                    dtype=torch.float64)
    scale = torch.clamp(eps / torch.clamp(norm, min=torch.finfo(torch.float64).tiny), max=1.0)
    tensor.mul_(scale.to(tensor.dtype))
    return tensor


@torch.no_grad()
def project_linf_(tensor: torch.Tensor, eps: float) -> torch.Tensor:
    """Clamp ``tensor`` element-wise to [-eps, eps] in place."""
    return tensor.clamp_(-eps, eps)


@torch.no_grad()
def project_(tensor: torch.Tensor, ball: Optional[AdversaryBall] = None, batch_dims: int = 0) -> torch.Tensor:
    """Project an adversary in place onto its ball (its own ``adv_ball`` unless ``ball`` is given)."""
    ball = _ball(tensor, ball)
    data = tensor.data if isinstance(tensor, nn.Parameter) else tensor
    if ball.norm == 'l2':
        return project_l2_(data, ball.eps, batch_dims)
    return project_linf_(data, ball.eps)


@torch.no_grad()
def ascent_direction(grad: torch.Tensor, norm: str, batch_dims: int = 0) -> torch.Tensor:
    """Steepest ascent direction of a ball for gradient ``grad``: ``sign(g)`` for l_inf, ``g / ||g||`` for l2
    (per leading index); a zero gradient gives a zero direction."""
    g = grad.detach().float()
    if norm == 'linf':
        return g.sign()
    n = torch.linalg.vector_norm(g, dim=_dims(g, batch_dims), keepdim=True)
    return g / n.clamp(min=torch.finfo(torch.float32).tiny)


@torch.no_grad()
def pgd_step_(tensor: torch.Tensor, grad: Optional[torch.Tensor], step_size: float,
              ball: Optional[AdversaryBall] = None, batch_dims: int = 0) -> torch.Tensor:
    """One projected gradient ascent step of an adversary, in place: ``step_size * eps`` along the steepest
    ascent direction of its ball (:func:`ascent_direction`), then the projection onto the ball. A zero (or
    None) gradient leaves it where it is. The one PGD step of the package: every attack
    (:func:`adpe_mm.adversary.attack.pgd_attack`) takes it."""
    ball = _ball(tensor, ball)
    if grad is not None:
        data = tensor.data if isinstance(tensor, nn.Parameter) else tensor
        data.add_(ascent_direction(grad, ball.norm, batch_dims).to(data.dtype), alpha=step_size * ball.eps)
    return project_(tensor, ball, batch_dims)


def uniform_in_ball(shape: Sequence[int], ball: AdversaryBall, batch_dims: int = 0,
                    generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """A point drawn uniformly from the ball (per leading index), float32 on the CPU: uniform per element in
    [-eps, eps] for l_inf; a Gaussian direction times ``eps * u ** (1 / n)`` for l2 (n elements)."""
    shape = tuple(shape)
    if ball.norm == 'linf':
        return (torch.rand(shape, generator=generator) * 2 - 1) * ball.eps
    g = torch.randn(shape, generator=generator)
    n = math.prod(shape[batch_dims:])
    direction = g / torch.linalg.vector_norm(g, dim=tuple(range(batch_dims, len(shape))), keepdim=True).clamp(
        min=torch.finfo(torch.float32).tiny)
    radius = ball.eps * torch.rand(shape[:batch_dims] + (1, ) * (len(shape) - batch_dims),
                                   generator=generator)**(1. / n)
    return direction * radius
