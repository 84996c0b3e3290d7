"""iRPE (Wu et al., 2021) as AdPE uses it: contextual, product method, on keys, one table shared by heads.

Every attention block that uses it owns one :class:`IRPE` with a table ``W`` of shape [head_dims, nb],
``nb = side * side + 1``: ``side * side`` product buckets of the clipped 2-D offset plus one bucket for every
pair that involves the cls token. The logit bias of query i and key j is ``b_ij = q_i . W[:, bucket(i, j)]``
with the same scaled query ``q / sqrt(d)`` that multiplies the keys, in pretraining, fine-tuning and every
downstream backbone (see docs/method_notes.md for why the reference implementation's variant is wrong).

Three lookups of the table (``index_mode``):

* ``integer``: the piecewise index of each axis, rounded and cast to an integer (buckets -3..3 for ratio 1.9);
* ``relaxed``: the same index without rounding, clamped to [-3, 3], reading the ``side x side`` table by
  bilinear interpolation with exact geometry (continuous index m reads bucket m; integer m reads exactly that
  bucket). Coordinate-mode adversaries need it because the integer index has no useful gradient.
* ``reference``: the authors' lookup, for reproducing their numbers only: the index clamped to [-beta, beta],
  divided by beta and read by ``grid_sample(align_corners=False, padding_mode='zeros')`` (index m at texel
  ``(side - 1) / 2 + side * m / (2 * beta)``, zeros beyond the edge texels), with the row offset on the
  table's W axis and the column offset on its H axis.

A coordinate adversary of the ``relaxed`` lookup reads the table at shifted offsets with its own ``edge``:
``'fade'`` (default) continues the relaxed index up to +-beta, as the paper's g~ does, and fades the table
linearly to zero one bucket beyond its edge, so the bias keeps responding to the shift until the offset
passes gamma; ``'clamp'`` is the original lookup, whose pairs all saturate (zero gradient) once the shift
exceeds the grid's ``saturation_radius`` (12.33 patches on the 7x7 pretraining grid). The adversarial rows
read ``clean + lookup_edge(offset + delta) - lookup_edge(offset)``: exactly the clean lookup at delta = 0 on
every grid, and exactly the table at the shifted offsets wherever the two lookups agree at delta = 0 (every
pair of the 7x7 grid, whose offsets stay below 6.33).

Offsets are query minus key, in patches, so the buckets do not depend on the grid size: the same table
serves the 7x7 pretraining grid, the 14x14 fine-tuning grid and the 64x64 detection grid.

The fast path computes ``q @ W`` ([B, H, L, nb]) and spreads it over the [B, H, L, L] bias with a gather
(integer) or a contraction with a cached interpolation matrix (relaxed); :meth:`IRPE.reference_bias`
materialises every ``r_ij`` instead and is what the tests compare the fast path with.
"""
import math
import warnings
from functools import lru_cache
from typing import Mapping, Optional, Tuple

import torch
from torch import nn

from adpe_mm.adversary import COORD_EDGES, adversary_parameter, adversary_value, check_ball
from .sincos import grid_coords

INDEX_MODES = ('integer', 'relaxed', 'reference')  # the codes of encode_lookup: only ever appended
ADVERSARY_MODES = ('embed', 'coord')
# How a continuous index reads the table (see the module docstring): 'clamp' (the relaxed lookup), 'fade'
# (a relaxed coordinate adversary's default edge) and 'reference' (the authors' grid_sample).
LOOKUPS = ('clamp', 'fade', 'reference')


def piecewise_params(ratio: float) -> Tuple[float, float, float]:
    """(alpha, beta, gamma) = (r, 2r, 8r) of iRPE's piecewise index for ``ratio`` r."""
    if not ratio > 0:
        raise ValueError(f'iRPE ratio must be > 0, got {ratio!r}')
    return ratio, 2. * ratio, 8. * ratio


def _log_part(ax: torch.Tensor, alpha: float, beta: float, gamma: float) -> torch.Tensor:
    # Clamping keeps log() finite (and its gradient non-NaN) where the near branch is selected.
    ax = ax.clamp(min=alpha)
    return alpha + torch.log(ax / alpha) / math.log(gamma / alpha) * (beta - alpha)


def piecewise_index(x: torch.Tensor, alpha: float, beta: float, gamma: float) -> torch.Tensor:
    """iRPE's integer piecewise index of offsets ``x`` (patches): ``round(x)`` near, log-compressed far.

    ``g(x) = round(x)`` for ``|x| <= alpha`` else ``sign(x) * min(beta, round(alpha + ln(|x|/alpha) /
    ln(gamma/alpha) * (beta - alpha)))``, cast to int64 (truncation, so 3.8 becomes 3).
    """
    x = x.float()
    far = torch.sign(x) * torch.clamp(torch.round(_log_part(x.abs(), alpha, beta, gamma)), max=beta)
    return torch.where(x.abs() <= alpha, torch.round(x), far).long()


def relaxed_index(x: torch.Tensor, alpha: float, beta: float, gamma: float,
                  limit: Optional[float] = None) -> torch.Tensor:
    """The piecewise index without rounding, clamped to ``[-limit, limit]``; differentiable in x.

    ``limit`` defaults to ``int(beta)`` (the last bucket); ``limit=beta`` is the paper's g~, which stops
    changing at ``|x| = gamma``.
    """
    far = torch.sign(x) * torch.clamp(_log_part(x.abs(), alpha, beta, gamma), max=beta)
    out = torch.where(x.abs() <= alpha, x, far)
    limit = float(int(beta)) if limit is None else float(limit)
    return out.clamp(-limit, limit)


def saturation_offset(ratio: float, lookup: str = 'clamp') -> float:
    """|offset| (patches) from which the relaxed index of ``lookup`` is constant: g~^-1(int(beta)) for
    'clamp' (6.33 for ratio 1.9), gamma for 'fade' and 'reference' (15.2)."""
    alpha, beta, gamma = piecewise_params(ratio)
    if lookup not in LOOKUPS:
        raise ValueError(f'lookup must be one of {LOOKUPS}, got {lookup!r}')
    if lookup != 'clamp':
        return gamma
    s = int(beta)
    return float(s) if s <= alpha else alpha * math.exp((s - alpha) / (beta - alpha) * math.log(gamma / alpha))


def saturation_radius(hw: Tuple[int, int], ratio: float, lookup: str = 'clamp') -> float:
    """The smallest shift (patches, on one axis) at which every pair of the ``hw`` grid is saturated on that
    axis, so that the coordinate adversary's gradient along it is exactly 0: ``max offset + saturation_offset``
    of the shorter axis (12.33 on 7x7 for 'clamp', 21.2 for 'fade' and 'reference')."""
    return min(hw[0], hw[1]) - 1 + saturation_offset(ratio, lookup)


def _pair_offsets(hw: Tuple[int, int], device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Row and column offsets (query minus key) of every patch pair, each [N, N]."""
    rows, cols = grid_coords(hw, device)
    return rows[:, None] - rows[None, :], cols[:, None] - cols[None, :]


@lru_cache(maxsize=64)
def bucket_index(hw: Tuple[int, int], ratio: float, with_cls: bool, device: torch.device) -> torch.Tensor:
    """Integer product bucket of every token pair, [L, L] int64 (cached per grid, ratio and device).

    ``(g(dy) + s) * side + (g(dx) + s)`` with ``s = int(beta)``, ``side = 2s + 1``; pairs with the cls token
    (token 0 when ``with_cls``) use the last bucket ``side * side``.
    """
    alpha, beta, gamma = piecewise_params(ratio)
    s = int(beta)
    side = 2 * s + 1
    dy, dx = _pair_offsets(hw, device)
    index = (piecewise_index(dy, alpha, beta, gamma) + s) * side + piecewise_index(dx, alpha, beta, gamma) + s
    if with_cls:
        index = nn.functional.pad(index, (1, 0, 1, 0), value=side * side)
    return index


def axis_corners(x: torch.Tensor, ratio: float, lookup: str = 'clamp'
                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Linear interpolation of offsets ``x`` on one table axis: corner texels (c0, c1) and weights (w0, w1).

    * ``clamp``: texel ``g~(x) + s`` with the index clamped to [-s, s] (s = int(beta)); the last cell ends at
      texel side - 1, so nothing outside the table is mixed in;
    * ``fade``: texel ``g~(x) + s`` with the index clamped to [-beta, beta]; the texels -1 and side beyond the
      edges are zeros;
    * ``reference``: texel ``((g~(x) / beta + 1) * side - 1) / 2`` (``grid_sample``, ``align_corners=False``)
      with the index clamped to [-beta, beta], zeros beyond the edges.

    Corners outside the table get weight 0 (and a valid texel, so they can be gathered). The weights are
    differentiable in x.
    """
    alpha, beta, gamma = piecewise_params(ratio)
    s = int(beta)
    side = 2 * s + 1
    if lookup == 'clamp':
        t = relaxed_index(x, alpha, beta, gamma) + s  # in [0, side - 1]
        c0 = t.detach().floor().clamp(0, side - 2)
        frac = t - c0
        return c0, c0 + 1, 1 - frac, frac
    if lookup not in LOOKUPS:
        raise ValueError(f'lookup must be one of {LOOKUPS}, got {lookup!r}')
    m = relaxed_index(x, alpha, beta, gamma, limit=beta)
    t = m + s if lookup == 'fade' else ((m / beta + 1) * side - 1) / 2
    c0 = t.detach().floor()  # in [-1, side - 1]
    frac = t - c0
    w0 = torch.where(c0 >= 0, 1 - frac, torch.zeros_like(frac))
    w1 = torch.where(c0 + 1 <= side - 1, frac, torch.zeros_like(frac))
    return c0.clamp(0, side - 1), (c0 + 1).clamp(0, side - 1), w0, w1


def relaxed_corners(hw: Tuple[int, int], ratio: float, with_cls: bool, device: torch.device,
                    delta: Optional[torch.Tensor] = None, lookup: str = 'clamp'
                    ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Bilinear corners of a continuous lookup of every token pair: buckets [L, L, 4] and weights [L, L, 4].

    Args:
        delta (Tensor, optional): a coordinate shift (delta_y, delta_x) in patches added to every offset,
            [2], or one per sample, [B, 2] (then buckets and weights are [B, L, L, 4]); the weights are
            differentiable in it.
        lookup (str): ``'clamp'`` (the relaxed lookup), ``'fade'`` or ``'reference'`` (see
            :func:`axis_corners`). The table's H axis is the row offset's, except for ``'reference'``, which
            puts the column offset on H and the row offset on W as the authors' ``grid_sample`` call does.
    """
    side = 2 * int(piecewise_params(ratio)[1]) + 1
    dy, dx = _pair_offsets(hw, device)
    if delta is not None and delta.dim() == 2:  # per sample: [B, N, N]
        dy = dy + delta[:, 0, None, None]
        dx = dx + delta[:, 1, None, None]
    elif delta is not None:
        dy = dy + delta[0]
        dx = dx + delta[1]
    rows, cols = axis_corners(dy, ratio, lookup), axis_corners(dx, ratio, lookup)  # each 4 x [N, N]
    (h0, h1, wh0, wh1), (v0, v1, wv0, wv1) = (cols, rows) if lookup == 'reference' else (rows, cols)
    # bucket = H texel * side + W texel; an integer index m reads bucket m with weight 1 in 'clamp'/'fade'
    buckets = torch.stack([h0 * side + v0, h0 * side + v1, h1 * side + v0, h1 * side + v1], dim=-1).long()
    weights = torch.stack([wh0 * wv0, wh0 * wv1, wh1 * wv0, wh1 * wv1], dim=-1)  # [N, N, 4]
    if with_cls:  # cls pairs read the cls bucket with weight 1 (the other three corners weigh 0)
        buckets = nn.functional.pad(buckets, (0, 0, 1, 0, 1, 0), value=side * side)
        weights = nn.functional.pad(weights, (0, 0, 1, 0, 1, 0))
        cls_pairs = torch.zeros_like(weights[..., :1])
        cls_pairs[..., 0, :, :] = 1.
        cls_pairs[..., :, 0, :] = 1.
        weights = weights + nn.functional.pad(cls_pairs, (0, 3))
    return buckets, weights


def relaxed_lookup_matrix(hw: Tuple[int, int], ratio: float, with_cls: bool, device: torch.device,
                          delta: Optional[torch.Tensor] = None, lookup: str = 'clamp') -> torch.Tensor:
    """A continuous lookup as a dense matrix [L, nb, L] (or [B, L, nb, L] for a per-sample ``delta``):
    ``bias[i, j] = sum_k qW[i, k] M[i, k, j]``."""
    buckets, weights = relaxed_corners(hw, ratio, with_cls, device, delta, lookup)
    nb = (2 * int(piecewise_params(ratio)[1]) + 1)**2 + 1
    lookup = weights.new_zeros(*buckets.shape[:-1], nb).scatter_add(-1, buckets, weights)  # [(B,) L, L, nb]
    return lookup.transpose(-1, -2)


# Up to this many (L * L * nb) entries the relaxed lookup is one contraction with a dense matrix (a batched
# matmul, fast forward and backward); beyond it (large downstream grids) four gathers of the bilinear corners.
DENSE_LOOKUP_LIMIT = 2**23


@lru_cache(maxsize=64)
def _clean_relaxed(hw, ratio, with_cls, device, dense: bool, lookup: str = 'clamp'):
    """Cached delta = 0 continuous lookup: the dense matrix, or the (buckets, weights) corners."""
    if dense:
        return relaxed_lookup_matrix(hw, ratio, with_cls, device, lookup=lookup)
    return relaxed_corners(hw, ratio, with_cls, device, lookup=lookup)


def _gather_corners(qw: torch.Tensor, buckets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum_c weights[i, j, c] * qw[..., i, buckets[i, j, c]] -> [B, H, L, L]; per-sample corners [B, L, L, 4]
    read sample b's own."""
    if buckets.dim() == 4:
        buckets, weights = buckets[:, None], weights[:, None]  # [B, 1, L, L, 4]
    out = 0.
    for c in range(buckets.shape[-1]):
        out = out + weights[..., c].to(qw.dtype) * qw.gather(-1, buckets[..., c].expand(*qw.shape[:2], -1, -1))
    return out


def _relaxed_bias(qw: torch.Tensor, lookup) -> torch.Tensor:
    if isinstance(lookup, tuple):
        return _gather_corners(qw, *lookup)
    if lookup.dim() == 4:  # one matrix per sample
        return torch.einsum('bhik,bikj->bhij', qw, lookup.to(qw.dtype))
    return torch.einsum('bhik,ikj->bhij', qw, lookup.to(qw.dtype))


# The lookup recorded with every table (the module's extra state) is an int64 tensor
# [INDEX_MODES.index(index_mode), round(ratio * RATIO_SCALE)]: a tensor so that every consumer of a state dict
# handles it like a weight (mmengine's runner broadcasts every entry at start-up, which fails on a str), int64
# so that casting a state dict to half precision cannot change it. Codes only ever get appended.
RATIO_SCALE = 1_000_000


def encode_lookup(index_mode: str, ratio: float) -> torch.Tensor:
    """The extra state of an :class:`IRPE`: its index mode and ratio as an int64 tensor [2]."""
    return torch.tensor([INDEX_MODES.index(index_mode), round(ratio * RATIO_SCALE)], dtype=torch.int64)


def decode_lookup(state) -> dict:
    """``dict(index_mode=..., ratio=...)`` of an iRPE extra state: the tensor of :func:`encode_lookup`, or the
    dict that checkpoints written before it hold. Raises ``ValueError`` naming anything else."""
    if isinstance(state, Mapping):  # checkpoints written before the lookup became a tensor
        return dict(index_mode=state.get('index_mode'), ratio=float(state.get('ratio')))
    if isinstance(state, torch.Tensor) and state.shape == (2, ) and not state.is_floating_point():
        code, scaled = (int(v) for v in state.tolist())
        if 0 <= code < len(INDEX_MODES):
            return dict(index_mode=INDEX_MODES[code], ratio=scaled / RATIO_SCALE)
    raise ValueError(f'not an iRPE lookup state (expected an int64 tensor [mode code, ratio * {RATIO_SCALE}] '
                     f'with a mode code below {len(INDEX_MODES)}, or a dict): {state!r}')


class IRPE(nn.Module):
    """Contextual product iRPE on keys for one attention block, with an optional AdPE adversary.

    Args:
        head_dims (int): d, the per-head query/key width; the table is [d, nb].
        ratio (float): the piecewise index ratio r (alpha = r, beta = 2r, gamma = 8r). Defaults to 1.9,
            which gives 7 x 7 + 1 = 50 buckets.
        index_mode (str, optional): ``'integer'``, ``'relaxed'`` or ``'reference'`` (the authors' lookup,
            for reproduction only) lookup. Defaults to ``'relaxed'`` when a coordinate adversary is attached
            and ``'integer'`` otherwise. It is stored in the state dict with the ratio (extra state, see
            :func:`encode_lookup`) so a checkpoint cannot be loaded into a model with another lookup.
        adversary (dict, optional): ``dict(mode='embed' | 'coord', norm='l2' | 'linf', eps=float)``.
            ``embed`` adds a per-bucket ``adv_embed`` [d, nb] to the table seen by masked query rows;
            ``coord`` shifts the offsets seen by masked query rows by ``adv_coord`` = (delta_y, delta_x)
            patches (needs the relaxed or the reference lookup). Either may be the stand-in of an attack
            (:func:`~adpe_mm.adversary.adversary_value`); a coordinate stand-in may hold one shift per
            sample, [B, 2]. With the relaxed lookup ``edge='fade'``
            (default) or ``'clamp'`` says how the shifted offsets read the table beyond its last bucket (see
            the module docstring). A ball that reaches the grid's :func:`saturation_radius` (a region where
            the adversary's gradient is exactly 0) is refused at the first forward with that grid, or only
            warned about with ``edge='clamp'``, which exists to reproduce the runs made with it.
    """

    def __init__(self, head_dims: int, ratio: float = 1.9, index_mode: Optional[str] = None,
                 adversary: Optional[dict] = None) -> None:
        super().__init__()
        alpha, beta, _ = piecewise_params(ratio)
        self.ratio = float(ratio)
        self.side = 2 * int(beta) + 1
        self.num_buckets = self.side * self.side + 1
        adv_mode, edge = None, None
        if adversary is not None:
            adversary = dict(adversary)
            adv_mode = adversary.pop('mode', None)
            if adv_mode not in ADVERSARY_MODES:
                raise ValueError(f'iRPE adversary mode must be one of {ADVERSARY_MODES}, got {adv_mode!r}')
            ball = check_ball(adversary.pop('norm', None), adversary.pop('eps', None))
            edge = adversary.pop('edge', None)
            if adversary:
                raise ValueError(f'unknown iRPE adversary keys {sorted(adversary)}')
        if index_mode is None:
            index_mode = 'relaxed' if adv_mode == 'coord' else 'integer'
        if index_mode not in INDEX_MODES:
            raise ValueError(f'iRPE index_mode must be one of {INDEX_MODES}, got {index_mode!r}')
        if adv_mode == 'coord' and index_mode == 'integer':
            raise ValueError("a coordinate-mode iRPE adversary needs index_mode='relaxed' (or 'reference'), "
                             f'got index_mode={index_mode!r}')
        if edge is not None and (adv_mode != 'coord' or index_mode != 'relaxed'):
            raise ValueError(f'iRPE adversary edge={edge!r} applies to a coordinate adversary with '
                             f"index_mode='relaxed' only (got mode={adv_mode!r}, index_mode={index_mode!r}; "
                             "the reference lookup has its own edge)")
        if edge is not None and edge not in COORD_EDGES:
            raise ValueError(f'iRPE adversary edge must be one of {COORD_EDGES}, got {edge!r}')
        self.index_mode = index_mode
        self.adversary_mode = adv_mode
        # The continuous lookups of clean rows and of coordinate-shifted rows (None for the integer index).
        self.clean_lookup = {'integer': None, 'relaxed': 'clamp', 'reference': 'reference'}[index_mode]
        self.adversary_lookup = None
        if adv_mode == 'coord':
            self.adversary_lookup = 'reference' if index_mode == 'reference' else (edge or 'fade')
        self.lookup_table = nn.Parameter(torch.zeros(head_dims, self.num_buckets))
        if adv_mode == 'embed':
            self.adv_embed = adversary_parameter((head_dims, self.num_buckets), *ball)
        elif adv_mode == 'coord':
            self.adv_coord = adversary_parameter(2, *ball)

    def extra_repr(self) -> str:
        return (f'head_dims={self.lookup_table.shape[0]}, buckets={self.num_buckets}, ratio={self.ratio}, '
                f'index_mode={self.index_mode!r}, adversary={self.adversary_mode!r}'
                + (f', adversary_lookup={self.adversary_lookup!r}' if self.adversary_lookup else ''))

    def check_coord_ball(self, hw: Tuple[int, int]) -> None:
        """Refuse (or, for ``edge='clamp'``, warn about) a coordinate ball that reaches the saturation radius
        of grid ``hw``, i.e. contains shifts where the adversary's gradient is exactly 0."""
        if self.adversary_mode != 'coord':  # (plain float arithmetic: no state, nothing for torch.compile)
            return
        ball = self.adv_coord.adv_ball  # an AdversaryBall (norm, eps)
        radius = saturation_radius(hw, self.ratio, self.adversary_lookup)
        if ball.eps >= radius:
            msg = (f'the iRPE coordinate adversary ({ball.norm} eps={ball.eps:g} patches, lookup '
                   f'{self.adversary_lookup!r}) reaches the saturation radius {radius:.2f} of the {hw[0]}x{hw[1]} '
                   'grid: shifted that far, every pair reads the saturated index on that axis and the '
                   f"adversary's gradient is exactly 0; use eps < {radius:.2f}")
            if self.adversary_lookup != 'clamp':
                raise ValueError(msg)
            warnings.warn(msg + " (or edge='fade', the default)")  # shown once per place by default

    # The lookup is part of what the table means: keep it with the weights (see encode_lookup).
    def get_extra_state(self) -> torch.Tensor:
        return encode_lookup(self.index_mode, self.ratio)

    def set_extra_state(self, state) -> None:
        recorded = decode_lookup(state)
        mine = decode_lookup(self.get_extra_state())
        for key in ('index_mode', 'ratio'):
            if recorded[key] != mine[key]:
                raise ValueError(f'iRPE {key} mismatch: the checkpoint has {key}={recorded[key]!r} but the model '
                                 f'was built with {key}={mine[key]!r}; set rpe.{key}={recorded[key]!r}')

    @staticmethod
    def _layout(hw: Tuple[int, int], length: int) -> bool:
        n = hw[0] * hw[1]
        if length not in (n, n + 1):
            raise ValueError(f'iRPE got {length} tokens for a {hw[0]}x{hw[1]} grid (expected {n} or {n + 1})')
        return length == n + 1

    def forward(self, q: torch.Tensor, hw: Tuple[int, int],
                query_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logit bias of every (query, key) pair.

        Args:
            q (Tensor): scaled queries ``q / sqrt(d)``, [B, H, L, d], L = h*w (+1 for a leading cls).
            hw (tuple): the patch grid (h, w).
            query_mask (Tensor, optional): [B, L] bool, True on the rows the adversary acts on (masked
                tokens; never the cls). Without it (or without an adversary) every row is clean.

        Returns:
            Tensor: [B, H, L, L] additive bias in ``q``'s dtype.
        """
        hw = tuple(hw)
        with_cls = self._layout(hw, q.shape[2])
        qw = q @ self.lookup_table.to(q.dtype)  # [B, H, L, nb]
        rows = None
        if self.adversary_mode is not None and query_mask is not None:
            rows = query_mask[:, None, :, None].to(q.dtype)  # [B, 1, L, 1]
        if self.adversary_mode == 'embed' and rows is not None:
            adv_embed = adversary_value(self, 'adv_embed')
            if adv_embed.dim() != 2:
                raise ValueError(f'the iRPE embedding adversary is one table {tuple(self.lookup_table.shape)}, '
                                 f'got {tuple(adv_embed.shape)} (per-sample adversaries are for coordinate modes)')
            qw = qw + rows * (q @ adv_embed.to(q.dtype))  # masked rows read W + A
        if self.index_mode == 'integer':
            index = bucket_index(hw, self.ratio, with_cls, q.device)
            return qw.gather(-1, index.expand(*qw.shape[:2], -1, -1))
        dense = q.shape[2]**2 * self.num_buckets <= DENSE_LOOKUP_LIMIT
        clean = _clean_relaxed(hw, self.ratio, with_cls, q.device, dense, self.clean_lookup)
        bias = _relaxed_bias(qw, clean)
        if self.adversary_mode == 'coord' and rows is not None:
            self.check_coord_ball(hw)
            # Masked rows read clean + lookup(offsets + adv_coord) - lookup(offsets) with the adversary's lookup.
            adv, delta = self.adversary_lookup, adversary_value(self, 'adv_coord')
            dense_shift = dense and delta.dim() == 1  # per-sample shifts: [B, L, L, 4] corners, not B matrices
            origin = clean if adv == self.clean_lookup else _clean_relaxed(hw, self.ratio, with_cls, q.device,
                                                                           dense, adv)
            shifted = (relaxed_lookup_matrix if dense_shift else relaxed_corners)(hw, self.ratio, with_cls,
                                                                                  q.device, delta, adv)
            if dense_shift:  # the difference is 0 at delta = 0 and carries delta's gradient
                bias = bias + rows * _relaxed_bias(qw, shifted - origin)
            elif adv == self.clean_lookup:
                bias = torch.where(rows.bool(), _relaxed_bias(qw, shifted), bias)
            else:
                bias = bias + rows * (_relaxed_bias(qw, shifted) - _relaxed_bias(qw, origin))
        return bias

    def reference_bias(self, q: torch.Tensor, hw: Tuple[int, int],
                       query_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Plain reference of :meth:`forward`: materialise ``r_ij`` for clean and adversarial rows."""
        with_cls = self._layout(hw, q.shape[2])
        table = self.lookup_table
        adv_table, delta = table, None
        if self.adversary_mode == 'embed':
            adv_table = table + adversary_value(self, 'adv_embed')
        elif self.adversary_mode == 'coord':
            delta = adversary_value(self, 'adv_coord')

        def pair_embeddings(w: torch.Tensor, shift=None, lookup=self.clean_lookup) -> torch.Tensor:  # [d, L, L]
            if self.index_mode == 'integer':
                return w[:, bucket_index(tuple(hw), self.ratio, with_cls, q.device)]
            matrix = relaxed_lookup_matrix(tuple(hw), self.ratio, with_cls, q.device, shift, lookup)  # [(B,) L, nb, L]
            return torch.einsum('dk,...ikj->...dij', w, matrix)

        clean = torch.einsum('bhid,dij->bhij', q, pair_embeddings(table).to(q.dtype))
        if self.adversary_mode is None or query_mask is None:
            return clean
        if delta is None:
            adv_pairs = pair_embeddings(adv_table)
        else:
            self.check_coord_ball(tuple(hw))
            lookup = self.adversary_lookup
            adv_pairs = pair_embeddings(table) + pair_embeddings(table, delta, lookup) - pair_embeddings(table,
                                                                                                        None, lookup)
        adv = torch.einsum('bhid,dij->bhij' if adv_pairs.dim() == 3 else 'bhid,bdij->bhij', q, adv_pairs.to(q.dtype))
        return torch.where(query_mask[:, None, :, None], adv, clean)
