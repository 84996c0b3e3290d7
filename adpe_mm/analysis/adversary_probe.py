"""Adversary-strength probe: how much can a fresh PGD adversary raise a frozen model's reconstruction loss?

For a pretraining config, its weights (a checkpoint's, or a fresh initialisation) and a fixed batch of images
with fixed masks, every attack that fits the model (``'<pe>-<mode>-<norm>'``, e.g. ``'rpe-coord-linf'``) is
run at every eps of its budget list:

* the model is rebuilt with that adversary (at zero; a trained adversary in the checkpoint is dropped) and
  the weights are frozen;
* ``steps`` projected ascent steps of ``step_size * eps`` (:func:`~adpe_mm.adversary.pgd_attack`, the
  package's one attack loop), from zero, on the same crops and masks;
* eps are taken in increasing order and the balls are nested, so from the second eps on a second PGD run
  starts at the best adversary found in the previous ball (it lies inside this one). ``gain`` = the highest
  loss over the iterates of both runs (zero included, so it is >= 0) minus the clean loss: the best loss
  found in the ball, which, like the true maximum over nested balls, cannot fall as eps grows (a PGD run from
  zero with steps of a fraction of eps can: its steps get coarser). ``gain_from_zero`` is the first run's;
* along the run from zero: the loss, the gradient norm with respect to the adversaries and, for RPE
  coordinate mode, the fraction of (query, key) pairs whose relaxed index is saturated (on either axis,
  averaged over blocks).

A coordinate adversary whose path enters a zero-gradient region shows up as a gradient norm of exactly 0 and
a saturated fraction of 1. ``tools/analysis_tools/adversary_probe.py`` writes the result as JSON and a PNG.
"""
import copy
from typing import Dict, List, Mapping, Optional, Sequence

import torch
from torch import nn

from ..models.pos_embed import grid_coords, saturation_offset
from ..adversary import is_adversary, named_adversaries, parse_adversary, substituted

# Table A.2's budgets, one norm per mode (eps in embedding units for embed, in patches for coord).
TABLE_A2_BUDGETS: Dict[str, List[float]] = {
    'ape-embed-l2': [1., 3., 5.],
    'ape-coord-l2': [1., 3., 5.],
    'rpe-embed-l2': [3., 5., 7.],
    'rpe-coord-linf': [10., 15., 20.],
}


def parse_attack(name: str) -> dict:
    """``'rpe-coord-linf'`` -> ``dict(pe='rpe', mode='coord', norm='linf')``; an RPE coordinate attack may name
    its edge (``'rpe-coord-linf-clamp'``). Errors name the bad value."""
    parts = name.split('-')
    if len(parts) not in (3, 4):
        raise ValueError(f"an attack is '<pe>-<mode>-<norm>[-<edge>]' (e.g. 'rpe-coord-linf'), got {name!r}")
    adv = dict(pe=parts[0], mode=parts[1], norm=parts[2])
    if len(parts) == 4:
        adv['edge'] = parts[3]
    parse_adversary(dict(adv, eps=1.))  # validates pe, mode, norm and edge
    return adv


def why_not(model_cfg: Mapping, attack: dict) -> Optional[str]:
    """Why ``attack`` does not fit a model config (None when it fits)."""
    rpe = model_cfg.get('backbone', {}).get('rpe')
    if attack['pe'] == 'rpe' and rpe is None:
        return 'the model has no iRPE'
    if attack['pe'] == 'rpe' and attack['mode'] == 'coord' and rpe.get('index_mode', 'integer') == 'integer':
        return "its iRPE uses the integer lookup, which has no coordinate gradient"
    return None


def build_attacked(model_cfg: Mapping, state: Optional[Mapping], adversary: Optional[dict],
                   keep_trained: bool = False) -> nn.Module:
    """The model of ``model_cfg`` with ``adversary`` (at zero, or at the state's own trained values with
    ``keep_trained``), the weights of ``state`` (or its own initialisation when None), frozen, in eval mode."""
    from mmpretrain.registry import MODELS
    cfg = copy.deepcopy(dict(model_cfg))
    cfg.update(adversary=adversary, log_adv_gap=False, adversary_steps=0, adversary_fresh=None,
               adversary_per_sample=False)
    model = MODELS.build(cfg)
    model.init_weights()
    if state is not None:
        weights = {k: v for k, v in state.items()
                   if keep_trained or not k.rsplit('.', 1)[-1].startswith('adv_')}
        missing, unexpected = model.load_state_dict(weights, strict=False)
        parameters = {n for n, p in model.named_parameters() if not is_adversary(p)}
        if unexpected or set(missing) & parameters:
            raise ValueError(f'the weights do not fit the model: missing {sorted(set(missing) & parameters)}, '
                             f'unexpected {unexpected}')
    model.eval()
    for p in model.parameters():
        p.requires_grad_(is_adversary(p))
    return model


@torch.no_grad()
def coord_saturation(model: nn.Module, values: Optional[Mapping[str, torch.Tensor]] = None) -> Optional[float]:
    """Mean over the iRPE coordinate adversaries of the fraction of patch pairs of the pretraining grid whose
    shifted offset is saturated (the relaxed index no longer changes) on either axis, at the adversaries' own
    values or at ``values`` (by qualified name); None without any."""
    fractions = []
    values = values or {}
    hw = tuple(model.backbone.patch_resolution)
    rows, cols = grid_coords(hw, torch.device('cpu'))
    dy, dx = rows[:, None] - rows[None, :], cols[:, None] - cols[None, :]
    for name, m in model.named_modules():
        if getattr(m, 'adversary_mode', None) == 'coord' and hasattr(m, 'adversary_lookup'):
            limit = saturation_offset(m.ratio, m.adversary_lookup)
            delta = values.get(f'{name}.adv_coord', m.adv_coord).detach().cpu()
            sat = ((dy + delta[0]).abs() >= limit) | ((dx + delta[1]).abs() >= limit)
            fractions.append(sat.float().mean().item())
    return sum(fractions) / len(fractions) if fractions else None


def attack(model: nn.Module, crops: torch.Tensor, mask: torch.Tensor, steps: int, step_size: float,
           start: str = 'zero', with_values: bool = False) -> dict:
    """PGD with the weights frozen from ``start`` ('zero', or 'current': the model's own adversaries): losses
    [steps + 1], gradient norms [steps] and (RPE coordinate mode) saturated fractions [steps + 1] along the
    path, clean loss and gain; with ``with_values`` also the best iterate's adversary ``values`` (tensors, by
    qualified name)."""
    with torch.no_grad():
        pred, _ = model.reconstruct(crops, adversarial=False, patch_mask=mask)
        clean = float(model.head.loss(pred, crops, mask))
    saturation = []
    result = model.attack(crops, mask, start, 'best', steps=steps, step_size=step_size,
                          on_iterate=lambda values: saturation.append(coord_saturation(model, values)))
    losses = result.losses
    out = dict(clean=clean, gain=max(losses + [clean]) - clean, losses=losses, grad_norms=result.grad_norms,
               saturation=saturation if saturation[0] is not None else None)
    if with_values:
        out['values'] = result.values
    return out


@torch.no_grad()
def set_adversaries(model: nn.Module, values: Mapping[str, torch.Tensor]) -> None:
    """Put ``values`` (by qualified name, e.g. an attack's best iterate on the same model) into the model's
    adversaries; the names must match exactly."""
    params = named_adversaries(model)
    if set(params) != set(values):
        raise ValueError(f'adversary values {sorted(values)} do not fit the model\'s {sorted(params)}')
    for name, p in params.items():
        p.copy_(values[name])


# unit directions of a uniform coordinate shift, in the ball's own norm (the l_inf diagonal is (1, 1))
SCAN_DIRECTIONS = {'axis': (1., 0.), 'diagonal': (1., 1.)}


@torch.no_grad()
def shift_scan(model: nn.Module, crops: torch.Tensor, mask: torch.Tensor, eps: float, points: int) -> dict:
    """The loss along a uniform coordinate shift: every coordinate adversary of ``model`` (shape [2]) set to
    the same ``s * u`` for ``points`` values of s from 0 to ``eps`` and each direction u of
    :data:`SCAN_DIRECTIONS`, scaled to norm 1 in the ball's norm, so that every point lies in the ball of
    radius ``eps``. It shows where the loss peaks along those lines: once the ball contains the peak, a larger
    ball holds no higher point there. ``shifts`` [points], ``losses`` (direction -> [points])."""
    params = named_adversaries(model)
    norm = next(iter(params.values())).adv_ball.norm
    shifts = torch.linspace(0., float(eps), points).tolist()
    out = dict(shifts=shifts, losses={})
    for direction, u in SCAN_DIRECTIONS.items():
        u = torch.tensor(u)
        u = u / (u.norm() if norm == 'l2' else u.abs().max())
        out['losses'][direction] = []
        for shift in shifts:
            with substituted(model, {n: (u * shift).to(p) for n, p in params.items()}):
                pred, _ = model.reconstruct(crops, patch_mask=mask)
                out['losses'][direction].append(float(model.head.loss(pred, crops, mask)))
    return out


@torch.no_grad()
def reliance(model_cfg: Mapping, state: Optional[Mapping], crops: torch.Tensor, mask: torch.Tensor) -> dict:
    """How much the model relies on the channels the adversaries perturb: the clean loss, the loss with the
    encoder's APE removed (its table zeroed), and for iRPE the l2 norm of every block's table and the loss with
    every table zeroed. A model can defeat an adversary by not using what it perturbs; these show it."""
    return model_reliance(build_attacked(model_cfg, state, None), crops, mask)


@torch.no_grad()
def model_reliance(model: nn.Module, crops: torch.Tensor, mask: torch.Tensor) -> dict:
    """:func:`reliance` of a built MAE+ model (its adversaries, if any, are not applied); the model's
    positional parameters are restored before it returns."""

    def loss() -> float:
        pred, _ = model.reconstruct(crops, adversarial=False, patch_mask=mask)
        return float(model.head.loss(pred, crops, mask))

    out = dict(clean=loss())
    pos = model.backbone.pos_embed
    saved = pos.detach().clone()
    pos.zero_()
    out['without_ape'] = loss()
    pos.copy_(saved)
    tables = {n: p for n, p in model.named_parameters() if n.endswith('lookup_table')}
    if tables:
        out['rpe_table_norms'] = {n[:-len('.lookup_table')]: float(p.norm()) for n, p in tables.items()}
        saved_tables = {n: p.detach().clone() for n, p in tables.items()}
        for p in tables.values():
            p.zero_()
        out['without_rpe'] = loss()
        for n, p in tables.items():
            p.copy_(saved_tables[n])
    return out


def own_adversary(model_cfg: Mapping, state: Mapping, crops: torch.Tensor, mask: torch.Tensor, steps: int,
                  step_size: float) -> Optional[dict]:
    """For a model trained with an adversary whose values the state holds: the loss at that trained adversary
    minus the clean loss (``trained_gain``, negative when the weights co-adapted with it) and the gain of a
    PGD attack started from it. None for a model without one."""
    adv = model_cfg.get('adversary')
    if adv is None or not any(k.rsplit('.', 1)[-1].startswith('adv_') for k in state):
        return None
    model = build_attacked(model_cfg, state, adv, keep_trained=True)
    result = attack(model, crops, mask, steps, step_size, start='current')
    return dict(adversary=parse_adversary(adv), trained_gain=result['losses'][0] - result['clean'], **result)


def probe(model_cfg: Mapping, state: Optional[Mapping], crops: torch.Tensor,
          budgets: Optional[Mapping[str, Sequence[float]]] = None, steps: int = 10, step_size: float = 0.25,
          seed: int = 0, scan_points: int = 0) -> dict:
    """Fresh-adversary strength of one model for every attack in ``budgets`` (default: Table A.2's).

    Args:
        model_cfg (Mapping): the pretraining config's ``model`` (its own ``adversary`` is replaced).
        state (Mapping, optional): the model's state dict; None probes a fresh initialisation.
        crops (Tensor): the fixed, preprocessed images [B, 3, h, w] (one crop each).
        budgets (Mapping): attack name -> eps list.
        steps (int), step_size (float): PGD steps of ``step_size * eps``.
        seed (int): seed of the fixed masks.
        scan_points (int): with > 1, a :func:`shift_scan` of that many points up to the largest eps of every
            coordinate attack (0: none).

    Returns:
        dict: ``attacks`` (name -> list, by increasing eps, of :func:`attack` results of the run from zero
        with their ``eps``, ``gain`` the best of both runs, ``gain_from_zero`` and, from the second eps on,
        ``losses_from_smaller``: the run from the smaller ball's best adversary), ``scans`` (coordinate
        attack name -> :func:`shift_scan`, with ``scan_points``), ``skipped`` (name ->
        reason), ``reliance`` (:func:`reliance`), ``own`` (:func:`own_adversary`, or None), ``settings``.
    """
    budgets = dict(TABLE_A2_BUDGETS if budgets is None else budgets)
    if not (isinstance(steps, int) and steps > 0) or not step_size > 0:
        raise ValueError(f'steps must be a positive int and step_size > 0, got {steps!r}, {step_size!r}')
    if not (isinstance(scan_points, int) and (scan_points == 0 or scan_points > 1)):
        raise ValueError(f'scan_points must be 0 or an int > 1, got {scan_points!r}')
    out = dict(attacks={}, scans={}, skipped={}, settings=dict(steps=steps, step_size=step_size, seed=seed,
                                                              images=int(crops.shape[0])))
    mask = None
    for name, eps_list in budgets.items():
        adv = parse_attack(name)
        reason = why_not(model_cfg, adv)
        if reason:
            out['skipped'][name] = reason
            continue
        out['attacks'][name] = []
        smaller = None  # the best adversary found in the previous, smaller ball
        for eps in sorted(float(e) for e in eps_list):
            model = build_attacked(model_cfg, state, dict(adv, eps=eps))
            if mask is None:  # the same masks for every attack
                mask = model.backbone.fixed_masking(crops.shape[0], crops.device, seed)
            run = attack(model, crops, mask, steps, step_size, with_values=True)
            best = run.pop('values')
            run['gain_from_zero'] = run['gain']
            if smaller is not None:  # nested balls: a second start from the smaller ball's best adversary
                set_adversaries(model, smaller)
                warm = attack(model, crops, mask, steps, step_size, start='current', with_values=True)
                run['losses_from_smaller'] = warm['losses']
                if warm['gain'] > run['gain']:
                    run['gain'], best = warm['gain'], warm['values']
            smaller = best
            out['attacks'][name].append(dict(eps=eps, **run))
        if scan_points and adv['mode'] == 'coord':  # model is the one of the largest eps
            out['scans'][name] = shift_scan(model, crops, mask, eps, scan_points)
    if mask is None:
        mask = build_attacked(model_cfg, state, None).backbone.fixed_masking(crops.shape[0], crops.device, seed)
    out['reliance'] = reliance(model_cfg, state, crops, mask)
    out['own'] = own_adversary(model_cfg, state, crops, mask, steps, step_size) if state is not None else None
    return out
