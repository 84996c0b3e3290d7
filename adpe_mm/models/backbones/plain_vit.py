"""A plain (non-hierarchical) ViT for dense prediction, ViTDet style, with the blocks of pretraining.

Detection and segmentation register this one class in their own registries (``adpe_mm.det``,
``adpe_mm.seg``); it is not registered in mmpretrain's, so it lives here without importing mmdet or mmseg.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmpretrain.models.utils import resize_pos_embed

from ..layers.attention import AttentionContext
from ..layers.transformer_layer import TransformerLayer
from .vit_core import ViTCore, block_indices


def window_partition(x: torch.Tensor, window: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Tokens [B, H, W, D] -> windows [B * nW, window * window, D], zero-padding H and W up to multiples of
    ``window``; also returns the padded size (Hp, Wp)."""
    B, H, W, D = x.shape
    pad_h, pad_w = (window - H % window) % window, (window - W % window) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    Hp, Wp = H + pad_h, W + pad_w
    x = x.view(B, Hp // window, window, Wp // window, window, D).transpose(2, 3)
    return x.reshape(-1, window * window, D), (Hp, Wp)


def window_unpartition(windows: torch.Tensor, window: int, padded: Tuple[int, int],
                       size: Tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`: windows [B * nW, window * window, D] -> tokens [B, H, W, D]."""
    (Hp, Wp), (H, W) = padded, size
    D = windows.shape[-1]
    x = windows.view(-1, Hp // window, Wp // window, window, window, D).transpose(2, 3)
    return x.reshape(-1, Hp, Wp, D)[:, :H, :W].contiguous()


class PlainViT(ViTCore):
    """ViT backbone for detection/segmentation: windowed attention with a few global blocks (ViTDet).

    It is the one :class:`~.vit_core.ViTCore` (same blocks, parameter names, attention formula, iRPE lookup
    and pretrained loader as pretraining), so a MAE+/AdPE encoder loads as is
    (``init_cfg=dict(type='Pretrained', checkpoint=...)``; the load report goes to the log). Differences to
    the pretraining encoder: no cls token (its APE position is dropped), the APE is resized to the
    ``img_size`` grid and learnable, and the final LN of pretraining is not used (the neck normalises).

    Windowed blocks attend within ``window_size`` x ``window_size`` windows, ViTDet style: the normalised
    tokens are zero-padded to a multiple of the window (the padding takes part in attention as keys, as in
    ViTDet) and each window is an independent token grid for iRPE. Global blocks attend over the whole grid.

    Args:
        arch (str | dict): 'b' / 'l' / 'h' ... (mmpretrain's ViT sizes) or a dict of ``embed_dims``,
            ``num_layers``, ``num_heads``, ``feedforward_channels``. Defaults to 'b'.
        img_size (int | tuple): input size the APE is laid out for (other sizes resize it at run time).
            Defaults to 1024.
        patch_size (int): patch size in pixels. Defaults to 16.
        window_size (int): window side in patches; 0 makes every block global. Defaults to 14.
        global_indices (Sequence[int]): blocks that attend globally. Defaults to (2, 5, 8, 11).
        out_indices (Sequence[int]): blocks whose outputs are returned, as [B, D, H/16, W/16] maps.
            Defaults to (11, ) (ViTDet); segmentation uses several, e.g. (3, 5, 7, 11).
        drop_path_rate (float): stochastic depth, linear over the blocks. Defaults to 0.1.
        qkv_bias (bool): biases in ``qkv``. Defaults to True.
        norm_cfg (dict): norms of the blocks. Defaults to LN with eps 1e-6.
        rpe (dict, optional): iRPE of every block (``ratio``, ``index_mode``) as in pretraining; the
            checkpoint's recorded lookup must match. None for APE only.
        use_abs_pos (bool): add the (pretrained) APE. Defaults to True.
        interpolate_mode (str): APE resizing. Defaults to 'bicubic'.
        fused_attn (bool): scaled_dot_product_attention (default) or the reference path.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=PATH, prefix='backbone.')`` loads a
            pretraining or backbone checkpoint.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 img_size: Union[int, Tuple[int, int]] = 1024,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 window_size: int = 14,
                 global_indices: Sequence[int] = (2, 5, 8, 11),
                 out_indices: Sequence[int] = (11, ),
                 drop_path_rate: float = 0.1,
                 qkv_bias: bool = True,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 rpe: Optional[dict] = None,
                 use_abs_pos: bool = True,
                 interpolate_mode: str = 'bicubic',
                 fused_attn: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(arch=arch, img_size=img_size, patch_size=patch_size, in_channels=in_channels,
                         out_indices=out_indices, drop_path_rate=drop_path_rate, qkv_bias=qkv_bias,
                         norm_cfg=norm_cfg, final_norm=False, out_type='featmap', with_cls_token=False,
                         interpolate_mode=interpolate_mode, rpe=rpe, fused_attn=fused_attn, init_cfg=init_cfg)
        self.out_indices = tuple(self.out_indices)
        if not use_abs_pos:
            self.pos_embed = None
        self.window_size = int(window_size)
        self.global_indices = tuple(range(self.num_layers)) if self.window_size <= 0 else block_indices(
            global_indices, self.num_layers, 'global_indices')

    def _windowed_block(self, layer: TransformerLayer, x: torch.Tensor) -> torch.Tensor:
        """One block whose attention runs in windows; x is [B, H, W, D]."""
        H, W = x.shape[1:3]
        windows, padded = window_partition(layer.ln1(x), self.window_size)
        out = layer.attn(windows, AttentionContext((self.window_size, self.window_size)))
        x = x + layer.drop_path(window_unpartition(out, self.window_size, padded, (H, W)))
        return layer.ffn(layer.ln2(x), identity=x)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Images [B, C, H, W] -> tuple of [B, D, H/16, W/16] maps at ``out_indices``."""
        B = x.shape[0]
        x, hw = self.patch_embed(x)  # [B, N, D]
        if self.pos_embed is not None:
            x = x + resize_pos_embed(self.pos_embed, self.patch_resolution, hw, mode=self.interpolate_mode,
                                     num_extra_tokens=0)
        h, w = hw
        x = x.view(B, h, w, self.embed_dims)
        outs = []
        for i, layer in enumerate(self.layers):
            if i in self.global_indices:
                x = layer(x.view(B, h * w, -1), AttentionContext((h, w))).view(B, h, w, -1)
            else:
                x = self._windowed_block(layer, x)
            if i in self.out_indices:
                outs.append(x.permute(0, 3, 1, 2).contiguous())
        return tuple(outs)
