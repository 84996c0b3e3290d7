"""Projected gradient ascent on adversary values with the weights frozen: the one attack loop of the package.

Sequential mode (persistent adversaries, K steps before the weights' step), the fresh and per-sample
adversaries of :class:`~adpe_mm.models.algorithms.MAEPlus`, the strength probe
(:mod:`adpe_mm.analysis.adversary_probe`) and the study's attack (``tools/study/positional_attack.py``) all
run :func:`pgd_attack`, whose step is :func:`~adpe_mm.adversary.ball.pgd_step_`.

The attack works on values, not on the parameters: ``loss_fn(values)`` must return the per-sample losses [B]
of the batch with the adversaries set to ``values`` (see :func:`~adpe_mm.adversary.substitute.substituted`).
Only the values get gradients; the weights' ``.grad`` is never touched.
"""
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional

import torch

from .ball import AdversaryBall, pgd_step_, uniform_in_ball

STARTS = ('zero', 'random', 'current')
SELECTS = ('best', 'last')


class AttackResult(NamedTuple):
    """What :func:`pgd_attack` found.

    Attributes:
        values: the chosen adversary values (detached), by name.
        start: per-sample losses [B] at the start values.
        chosen: per-sample losses [B] at ``values`` (None for ``select='last'``, whose last iterate is not
            evaluated).
        losses: the mean loss at every evaluated iterate, the start first.
        grad_norms: the l2 norm of all value gradients at every step.
    """
    values: Dict[str, torch.Tensor]
    start: torch.Tensor
    chosen: Optional[torch.Tensor]
    losses: List[float]
    grad_norms: List[float]


def start_values(params: Mapping[str, torch.Tensor], start: str, batch_size: Optional[int] = None,
                 generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
    """Initial values for an attack on ``params`` (adversary parameters): ``'zero'``, ``'random'`` (uniform in
    each ball, from ``generator``) or ``'current'`` (the parameters' values). With ``batch_size`` every value
    gets a leading per-sample dimension of that size."""
    if start not in STARTS:
        raise ValueError(f'attack start must be one of {STARTS}, got {start!r}')
    out = {}
    for name, p in params.items():
        shape = tuple(p.shape) if batch_size is None else (batch_size, ) + tuple(p.shape)
        if start == 'zero':
            v = torch.zeros(shape, dtype=p.dtype, device=p.device)
        elif start == 'random':
            v = uniform_in_ball(shape, p.adv_ball, int(batch_size is not None), generator).to(p.device, p.dtype)
        else:
            v = p.detach().clone() if batch_size is None else p.detach().expand(shape).clone()
        out[name] = v
    return out


def pgd_attack(loss_fn: Callable[[Dict[str, torch.Tensor]], torch.Tensor],
               values: Mapping[str, torch.Tensor],
               balls: Mapping[str, AdversaryBall],
               steps: int,
               step_size: float,
               per_sample: bool = False,
               select: str = 'best',
               reduce_grad: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
               reduce_loss: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
               on_iterate: Optional[Callable[[Dict[str, torch.Tensor]], None]] = None) -> AttackResult:
    """``steps`` projected ascent steps of ``step_size * eps`` from ``values``.

    Args:
        loss_fn: values -> per-sample losses [B], differentiable in the values.
        values: the start (see :func:`start_values`); with ``per_sample`` each has a leading dimension B.
        balls: the ball of every value.
        steps, step_size: K >= 1 steps of ``step_size * eps`` along the ball's steepest ascent direction.
        per_sample: values [B, ...] are B independent adversaries: l2 steps, projections and the selection are
            per sample (sample b's loss depends on its own value only).
        select: ``'best'`` returns the iterate with the highest loss among all K + 1, the start included (per
            sample with ``per_sample``), so ``chosen >= start`` element-wise; it costs one forward without
            gradient at the last iterate. ``'last'`` returns the K-th iterate unevaluated (sequential mode).
        reduce_grad: applied to each shared value's gradient before the step (all-reduce under DDP, so that
            every rank takes the same step); not used with ``per_sample``.
        reduce_loss: applied to the mean loss before a shared selection (the global mean under DDP).
        on_iterate: called with the values at every iterate, the start first (for the probe's measures).
    """
    if not (isinstance(steps, int) and not isinstance(steps, bool) and steps >= 1):
        raise ValueError(f'attack steps must be an integer >= 1, got {steps!r}')
    if not step_size > 0:
        raise ValueError(f'attack step_size must be > 0, got {step_size!r}')
    if select not in SELECTS:
        raise ValueError(f'attack select must be one of {SELECTS}, got {select!r}')
    batch_dims = int(per_sample)
    current = {k: v.detach().clone().requires_grad_(True) for k, v in values.items()}
    best = chosen = start = chosen_total = None
    losses, grad_norms = [], []
    for k in range(steps + 1):
        last = k == steps
        if last and select == 'last':
            break
        if on_iterate is not None:
            on_iterate({n: v.detach() for n, v in current.items()})
        with torch.set_grad_enabled(not last):
            per = loss_fn(current)  # [B]
        loss = per.mean()
        losses.append(float(loss.detach()))
        per_d = per.detach().float()
        if start is None:
            start = per_d
        if select == 'best':
            if per_sample:
                better = per_d > chosen if chosen is not None else torch.ones_like(per_d, dtype=torch.bool)
                if best is None:
                    best = {n: v.detach().clone() for n, v in current.items()}
                else:
                    for n, v in current.items():
                        b = better.view(-1, *([1] * (v.dim() - 1)))
                        best[n] = torch.where(b, v.detach(), best[n])
                chosen = per_d if chosen is None else torch.where(better, per_d, chosen)
            else:
                total = loss.detach().float() if reduce_loss is None else reduce_loss(loss.detach().float())
                if chosen is None or total > chosen_total:
                    best = {n: v.detach().clone() for n, v in current.items()}
                    chosen, chosen_total = per_d, total
        if last:
            break
        grads = torch.autograd.grad(loss, list(current.values()), allow_unused=True)
        with torch.no_grad():
            grads = [torch.zeros_like(v) if g is None else g.float() for v, g in zip(current.values(), grads)]
            if reduce_grad is not None and not per_sample:
                grads = [reduce_grad(g) for g in grads]
            grad_norms.append(float(torch.stack([g.norm() for g in grads]).norm()) if grads else 0.)
            for (name, v), g in zip(current.items(), grads):
                pgd_step_(v, g, step_size, balls[name], batch_dims)
    if select == 'last':
        best = {n: v.detach() for n, v in current.items()}
    return AttackResult(best, start, chosen, losses, grad_norms)
