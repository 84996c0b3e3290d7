"""iRPE (Wu et al., 2021) as AdPE uses it: contextual, product method, on keys, one table shared by heads.

Every attention block that uses it owns one :class:`IRPE` with a table ``W`` of shape [head_dims, nb],
``nb = side * side + 1``: ``side * side`` product buckets of the clipped 2-D offset plus one bucket for every
pair that involves the cls token. The logit bias of query i and key j is ``b_ij = q_i . W[:, bucket(i, j)]``
with the same scaled query ``q / sqrt(d)`` that multiplies the keys, in pretraining, fine-tuning and every
downstream backbone (see docs/method_notes.md for why the reference implementation's variant is wrong).

Two lookups of the table:

* ``integer``: the piecewise index of each axis, rounded and cast to an integer (buckets -3..3 for ratio 1.9);
* ``relaxed``: the same index without rounding, clamped to [-3, 3], reading the ``side x side`` table by
  bilinear interpolation with exact geometry (continuous index m reads bucket m; integer m reads exactly that
  bucket). Coordinate-mode adversaries need it because the integer index has no useful gradient.

Offsets are query minus key, in patches, so the buckets do not depend on the grid size: the same table
serves the 7x7 pretraining grid, the 14x14 fine-tuning grid and the 64x64 detection grid.

The fast path computes ``q @ W`` ([B, H, L, nb]) and spreads it over the [B, H, L, L] bias with a gather
(integer) or a contraction with a cached interpolation matrix (relaxed); :meth:`IRPE.reference_bias`
materialises every ``r_ij`` instead and is what the tests compare the fast path with.
"""
import math
from functools import lru_cache
from typing import Mapping, Optional, Tuple

import torch
from torch import nn

from ..utils.adversary import adversary_parameter, check_ball
from .sincos import grid_coords

INDEX_MODES = ('integer', 'relaxed')
ADVERSARY_MODES = ('embed', 'coord')


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


def relaxed_index(x: torch.Tensor, alpha: float, beta: float, gamma: float) -> torch.Tensor:
    """The piecewise index without rounding, clamped to ``[-int(beta), int(beta)]``; differentiable in x."""
    far = torch.sign(x) * torch.clamp(_log_part(x.abs(), alpha, beta, gamma), max=beta)
    out = torch.where(x.abs() <= alpha, x, far)
    limit = float(int(beta))
    return out.clamp(-limit, limit)


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


def relaxed_corners(hw: Tuple[int, int], ratio: float, with_cls: bool, device: torch.device,
                    delta: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Bilinear corners of the relaxed lookup of every token pair: buckets [L, L, 4] and weights [L, L, 4].

    Args:
        delta (Tensor, optional): a coordinate shift (delta_y, delta_x) in patches added to every offset;
            the weights are differentiable in it.
    """
    alpha, beta, gamma = piecewise_params(ratio)
    s = int(beta)
    side = 2 * s + 1
    dy, dx = _pair_offsets(hw, device)
    if delta is not None:
        dy = dy + delta[0]
        dx = dx + delta[1]
    fy = relaxed_index(dy, alpha, beta, gamma) + s  # [N, N] in [0, side - 1]
    fx = relaxed_index(dx, alpha, beta, gamma) + s
    # Corner (y0, x0) of the interpolation cell; the last cell ends exactly at bucket side - 1, so an
    # integer index m reads bucket m with weight 1 and nothing outside the table is ever mixed in.
    y0 = fy.detach().floor().clamp(0, side - 2)
    x0 = fx.detach().floor().clamp(0, side - 2)
    ty, tx = fy - y0, fx - x0
    buckets = torch.stack([y0 * side + x0, y0 * side + x0 + 1, (y0 + 1) * side + x0, (y0 + 1) * side + x0 + 1],
                          dim=-1).long()  # [N, N, 4]
    weights = torch.stack([(1 - ty) * (1 - tx), (1 - ty) * tx, ty * (1 - tx), ty * tx], dim=-1)
    if with_cls:  # cls pairs read the cls bucket with weight 1 (the other three corners weigh 0)
        buckets = nn.functional.pad(buckets, (0, 0, 1, 0, 1, 0), value=side * side)
        weights = nn.functional.pad(weights, (0, 0, 1, 0, 1, 0))
        cls_pairs = torch.zeros_like(weights[..., :1])
        cls_pairs[0] = 1.
        cls_pairs[:, 0] = 1.
        weights = weights + nn.functional.pad(cls_pairs, (0, 3))
    return buckets, weights


def relaxed_lookup_matrix(hw: Tuple[int, int], ratio: float, with_cls: bool, device: torch.device,
                          delta: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The relaxed lookup as a dense matrix [L, nb, L]: ``bias[i, j] = sum_k qW[i, k] M[i, k, j]``."""
    buckets, weights = relaxed_corners(hw, ratio, with_cls, device, delta)
    nb = (2 * int(piecewise_params(ratio)[1]) + 1)**2 + 1
    lookup = weights.new_zeros(*buckets.shape[:2], nb).scatter_add(-1, buckets, weights)  # [L, L, nb]
    return lookup.transpose(1, 2)


# Up to this many (L * L * nb) entries the relaxed lookup is one contraction with a dense matrix (a batched
# matmul, fast forward and backward); beyond it (large downstream grids) four gathers of the bilinear corners.
DENSE_LOOKUP_LIMIT = 2**23


@lru_cache(maxsize=64)
def _clean_relaxed(hw, ratio, with_cls, device, dense: bool):
    """Cached clean (delta = 0) relaxed lookup: the dense matrix, or the (buckets, weights) corners."""
    if dense:
        return relaxed_lookup_matrix(hw, ratio, with_cls, device)
    return relaxed_corners(hw, ratio, with_cls, device)


def _gather_corners(qw: torch.Tensor, buckets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum_c weights[i, j, c] * qw[..., i, buckets[i, j, c]] -> [B, H, L, L]."""
    out = 0.
    for c in range(buckets.shape[-1]):
        out = out + weights[..., c].to(qw.dtype) * qw.gather(-1, buckets[..., c].expand(*qw.shape[:2], -1, -1))
    return out


def _relaxed_bias(qw: torch.Tensor, lookup) -> torch.Tensor:
    if isinstance(lookup, tuple):
        return _gather_corners(qw, *lookup)
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
        index_mode (str, optional): ``'integer'`` or ``'relaxed'`` lookup. Defaults to ``'relaxed'`` when a
            coordinate adversary is attached and ``'integer'`` otherwise. It is stored in the state dict
            with the ratio (extra state, see :func:`encode_lookup`) so a checkpoint cannot be loaded into a
            model with another lookup.
        adversary (dict, optional): ``dict(mode='embed' | 'coord', norm='l2' | 'linf', eps=float)``.
            ``embed`` adds a per-bucket ``adv_embed`` [d, nb] to the table seen by masked query rows;
            ``coord`` shifts the offsets seen by masked query rows by ``adv_coord`` = (delta_y, delta_x)
            patches (needs the relaxed lookup).
    """

    def __init__(self, head_dims: int, ratio: float = 1.9, index_mode: Optional[str] = None,
                 adversary: Optional[dict] = None) -> None:
        super().__init__()
        alpha, beta, _ = piecewise_params(ratio)
        self.ratio = float(ratio)
        self.side = 2 * int(beta) + 1
        self.num_buckets = self.side * self.side + 1
        adv_mode = None
        if adversary is not None:
            adversary = dict(adversary)
            adv_mode = adversary.pop('mode', None)
            if adv_mode not in ADVERSARY_MODES:
                raise ValueError(f'iRPE adversary mode must be one of {ADVERSARY_MODES}, got {adv_mode!r}')
            ball = check_ball(adversary.pop('norm', None), adversary.pop('eps', None))
            if adversary:
                raise ValueError(f'unknown iRPE adversary keys {sorted(adversary)}')
        if index_mode is None:
            index_mode = 'relaxed' if adv_mode == 'coord' else 'integer'
        if index_mode not in INDEX_MODES:
            raise ValueError(f'iRPE index_mode must be one of {INDEX_MODES}, got {index_mode!r}')
        if adv_mode == 'coord' and index_mode != 'relaxed':
            raise ValueError("a coordinate-mode iRPE adversary needs index_mode='relaxed', "
                             f'got index_mode={index_mode!r}')
        self.index_mode = index_mode
        self.adversary_mode = adv_mode
        self.lookup_table = nn.Parameter(torch.zeros(head_dims, self.num_buckets))
        if adv_mode == 'embed':
            self.adv_embed = adversary_parameter((head_dims, self.num_buckets), *ball)
        elif adv_mode == 'coord':
            self.adv_coord = adversary_parameter(2, *ball)

    def extra_repr(self) -> str:
        return (f'head_dims={self.lookup_table.shape[0]}, buckets={self.num_buckets}, ratio={self.ratio}, '
                f'index_mode={self.index_mode!r}, adversary={self.adversary_mode!r}')

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
            qw = qw + rows * (q @ self.adv_embed.to(q.dtype))  # masked rows read W + A
        if self.index_mode == 'integer':
            index = bucket_index(hw, self.ratio, with_cls, q.device)
            return qw.gather(-1, index.expand(*qw.shape[:2], -1, -1))
        dense = q.shape[2]**2 * self.num_buckets <= DENSE_LOOKUP_LIMIT
        clean = _clean_relaxed(hw, self.ratio, with_cls, q.device, dense)
        bias = _relaxed_bias(qw, clean)
        if self.adversary_mode == 'coord' and rows is not None:
            # Masked rows read the table at offsets shifted by adv_coord.
            if dense:  # the difference to the clean lookup is 0 at delta = 0 and carries delta's gradient
                shifted = relaxed_lookup_matrix(hw, self.ratio, with_cls, q.device, self.adv_coord)
                bias = bias + rows * _relaxed_bias(qw, shifted - clean)
            else:
                shifted = relaxed_corners(hw, self.ratio, with_cls, q.device, self.adv_coord)
                bias = torch.where(rows.bool(), _relaxed_bias(qw, shifted), bias)
        return bias

    def reference_bias(self, q: torch.Tensor, hw: Tuple[int, int],
                       query_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Plain reference of :meth:`forward`: materialise ``r_ij`` for clean and adversarial rows."""
        with_cls = self._layout(hw, q.shape[2])
        table = self.lookup_table
        adv_table, delta = table, None
        if self.adversary_mode == 'embed':
            adv_table = table + self.adv_embed
        elif self.adversary_mode == 'coord':
            delta = self.adv_coord

        def pair_embeddings(w: torch.Tensor, shift) -> torch.Tensor:  # [d, L, L]
            if self.index_mode == 'integer':
                return w[:, bucket_index(tuple(hw), self.ratio, with_cls, q.device)]
            lookup = relaxed_lookup_matrix(tuple(hw), self.ratio, with_cls, q.device, shift)  # [L, nb, L]
            return torch.einsum('dk,ikj->dij', w, lookup)

        clean = torch.einsum('bhid,dij->bhij', q, pair_embeddings(table, None).to(q.dtype))
        if self.adversary_mode is None or query_mask is None:
            return clean
        adv = torch.einsum('bhid,dij->bhij', q, pair_embeddings(adv_table, delta).to(q.dtype))
        return torch.where(query_mask[:, None, :, None], adv, clean)
