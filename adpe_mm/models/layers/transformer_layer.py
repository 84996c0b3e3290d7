"""Pre-norm ViT block whose attention can carry iRPE; names match mmpretrain's TransformerEncoderLayer."""
from typing import Optional

import torch
from mmcv.cnn.bricks.drop import DropPath
from mmcv.cnn.bricks.transformer import FFN
from mmengine.model import BaseModule
from mmpretrain.models.utils import build_norm_layer
from torch import nn

from .attention import Attention, AttentionContext


class TransformerLayer(BaseModule):
    """``x + DropPath(Attn(LN(x)))`` then ``x + DropPath(FFN(LN(x)))``.

    Parameter names (``ln1``, ``attn.qkv``, ``attn.proj``, ``ln2``, ``ffn.layers.*``) are those of
    mmpretrain's ``TransformerEncoderLayer``, so checkpoints move between the two where no iRPE is used.

    Args:
        embed_dims (int): D.
        num_heads (int): H.
        feedforward_channels (int): hidden width of the FFN.
        drop_rate (float): dropout after attention projection and in the FFN. Defaults to 0.
        attn_drop_rate (float): dropout on attention weights. Defaults to 0.
        drop_path_rate (float): stochastic depth of both residual branches. Defaults to 0.
        qkv_bias (bool): biases in ``qkv``. Defaults to True.
        act_cfg (dict): FFN activation. Defaults to GELU.
        norm_cfg (dict): norm layers. Defaults to LN with eps 1e-6.
        rpe (dict, optional): kwargs of :class:`~adpe_mm.models.pos_embed.IRPE`; None for no iRPE.
        fused_attn (bool): scaled_dot_product_attention (True) or the reference attention path.
    """

    def __init__(self, embed_dims: int, num_heads: int, feedforward_channels: int, drop_rate: float = 0.,
                 attn_drop_rate: float = 0., drop_path_rate: float = 0., qkv_bias: bool = True,
                 act_cfg: dict = dict(type='GELU'), norm_cfg: dict = dict(type='LN', eps=1e-6),
                 rpe: Optional[dict] = None, fused_attn: bool = True, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.ln1 = build_norm_layer(norm_cfg, embed_dims)
        self.attn = Attention(embed_dims, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop_rate,
                              proj_drop=drop_rate, rpe=rpe, fused=fused_attn)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.ln2 = build_norm_layer(norm_cfg, embed_dims)
        self.ffn = FFN(embed_dims=embed_dims, feedforward_channels=feedforward_channels, num_fcs=2,
                       ffn_drop=drop_rate, dropout_layer=dict(type='DropPath', drop_prob=drop_path_rate),
                       act_cfg=act_cfg)

    def forward(self, x: torch.Tensor, ctx: Optional[AttentionContext] = None) -> torch.Tensor:
        """Tokens [B, L, D] -> [B, L, D]."""
        x = x + self.drop_path(self.attn(self.ln1(x), ctx))
        return self.ffn(self.ln2(x), identity=x)
