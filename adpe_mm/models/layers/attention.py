"""Multi-head self-attention whose logits take the iRPE bias: the one place where attention gets a bias."""
from typing import NamedTuple, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..pos_embed.irpe import IRPE

# torch's CUDA scaled_dot_product_attention (memory-efficient kernel) takes a float attn_mask whose strides
# are multiples of this many elements on every dim but the last (stride 1), in the query's dtype; any other
# mask it pads and slices itself inside the call (one [B, H, L, L] copy, invisible to torch.compile).
SDPA_MASK_ALIGN = 8
FUSED_MODES = (True, False, 'aligned')


def align_bias(bias: torch.Tensor, align: int = SDPA_MASK_ALIGN) -> torch.Tensor:
    """The same bias [..., L, S] held in storage whose rows are padded to a multiple of ``align`` (a view)."""
    S = bias.shape[-1]
    if S % align == 0 and bias.is_contiguous():
        return bias
    pad = -S % align
    return F.pad(bias, (0, pad))[..., :S]  # [..., L, S + pad] storage, sliced back to S columns


class AttentionContext(NamedTuple):
    """What the attention of every block needs to know about the token sequence.

    Attributes:
        hw (tuple): the patch grid (h, w) the tokens come from.
        query_mask (Tensor, optional): [B, L] bool, True on masked patch tokens (never the cls), the rows an
            iRPE adversary acts on. None outside pretraining.
    """
    hw: Tuple[int, int]
    query_mask: Optional[torch.Tensor] = None


class Attention(nn.Module):
    """Multi-head self-attention with an optional iRPE key bias.

    Parameter names (``qkv``, ``proj``) follow mmpretrain's ``MultiheadAttention`` so that APE encoders load
    into mmpretrain's ``VisionTransformer`` and vice versa. Logits are ``(q / sqrt(d)) . k + b`` with the iRPE
    bias ``b_ij = (q_i / sqrt(d)) . W[:, bucket(i, j)]``.

    Args:
        embed_dims (int): D.
        num_heads (int): H; D must be divisible by H.
        qkv_bias (bool): learn biases in ``qkv``. Defaults to True.
        attn_drop (float): dropout on the attention weights. Defaults to 0.
        proj_drop (float): dropout after ``proj``. Defaults to 0.
        rpe (dict, optional): kwargs of :class:`IRPE` (``ratio``, ``index_mode``, ``adversary``); None for
            no relative positional embedding.
        fused (bool | str): use ``F.scaled_dot_product_attention`` (True, default); False runs the plain
            reference path (explicit softmax, explicit ``r_ij``) that the tests compare the fast path with;
            ``'aligned'`` is the fast path with the iRPE bias laid out as the memory-efficient SDPA kernel
            wants it (rows padded to a multiple of :data:`SDPA_MASK_ALIGN`, see :func:`align_bias`), so the
            pad is an op of the model (fusable by ``torch.compile``) instead of a copy inside SDPA.
    """

    def __init__(self, embed_dims: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.,
                 proj_drop: float = 0., rpe: Optional[dict] = None, fused: Union[bool, str] = True) -> None:
        super().__init__()
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by num_heads={num_heads}')
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.scale = self.head_dims**-0.5
        if fused not in FUSED_MODES:
            raise ValueError(f'fused must be one of {FUSED_MODES}, got {fused!r}')
        self.fused = fused
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)
        self.rpe = IRPE(self.head_dims, **rpe) if rpe is not None else None

    def logits(self, x: torch.Tensor, ctx: Optional[AttentionContext] = None) -> torch.Tensor:
        """Attention logits [B, H, L, L] of tokens ``x`` [B, L, D] by the reference formula (for analysis)."""
        q, k, _ = self._qkv(x)
        return self.logits_from(q, k, ctx)

    def _qkv(self, x: torch.Tensor):
        B, L, _ = x.shape
        qkv = self.qkv(x).reshape(B, L, 3, self.num_heads, self.head_dims).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each [B, H, L, d]
        return q * self.scale, k, v

    def forward(self, x: torch.Tensor, ctx: Optional[AttentionContext] = None) -> torch.Tensor:
        """Tokens [B, L, D] -> [B, L, D]. ``ctx`` is required when the block has an iRPE."""
        B, L, D = x.shape
        if self.rpe is not None and ctx is None:
            raise ValueError('attention with iRPE needs an AttentionContext (the patch grid)')
        q, k, v = self._qkv(x)
        dropout = self.attn_drop if self.training else 0.
        if self.fused:
            bias = self.rpe(q, ctx.hw, ctx.query_mask) if self.rpe is not None else None  # [B, H, L, L]
            if bias is not None and self.fused == 'aligned':
                bias = align_bias(bias)
            # q is already scaled; the bias uses the same scaled query.
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout, scale=1.0)
        else:
            attn = self.logits_from(q, k, ctx).softmax(dim=-1)
            attn = F.dropout(attn, dropout)
            out = attn @ v
        out = out.transpose(1, 2).reshape(B, L, D)  # [B, L, D]
        return self.proj_drop(self.proj(out))

    def logits_from(self, q: torch.Tensor, k: torch.Tensor, ctx: Optional[AttentionContext]) -> torch.Tensor:
        """Reference logits from scaled queries and keys (both [B, H, L, d])."""
        logits = q @ k.transpose(-2, -1)
        if self.rpe is not None:
            logits = logits + self.rpe.reference_bias(q, ctx.hw, ctx.query_mask)
        return logits
