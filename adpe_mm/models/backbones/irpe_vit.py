"""mmpretrain's VisionTransformer with blocks that can carry iRPE: the encoder used after pretraining."""
from typing import Optional, Sequence, Union

import numpy as np
import torch
from mmengine.model import ModuleList
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.registry import MODELS

from ..utils.attention import AttentionContext
from ..utils.transformer_layer import TransformerLayer


@MODELS.register_module()
class IRPEViT(VisionTransformer):
    """ViT whose every block may add the iRPE key bias to its attention logits.

    Everything but the blocks is mmpretrain's ``VisionTransformer`` (patch embedding, cls token, learnable
    ``pos_embed`` resized bicubically on load and at run time, output types, ``get_layer_depth`` for
    layer-wise lr decay, freezing). The blocks are :class:`TransformerLayer` with mmpretrain's parameter
    names, so without iRPE the state dict is the one of mmpretrain's ViT. It is the backbone for ImageNet
    fine-tuning and linear probing of MAE+/AdPE encoders.

    Args:
        rpe (dict, optional): iRPE of every block, kwargs of :class:`~adpe_mm.models.pos_embed.IRPE`
            (``ratio``, ``index_mode``). Use the pretraining values: the index mode is also stored in every
            block's state and a mismatch is refused at load time. None (default) for APE only.
        fused_attn (bool): scaled_dot_product_attention (default) or the reference attention path.
        Other arguments are those of mmpretrain's ``VisionTransformer``.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 img_size: int = 224,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = -1,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 qkv_bias: bool = True,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 final_norm: bool = True,
                 out_type: str = 'cls_token',
                 with_cls_token: bool = True,
                 frozen_stages: int = -1,
                 interpolate_mode: str = 'bicubic',
                 patch_cfg: dict = dict(),
                 rpe: Optional[dict] = None,
                 fused_attn: bool = True,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(
            arch=arch,
            img_size=img_size,
            patch_size=patch_size,
            in_channels=in_channels,
            out_indices=out_indices,
            drop_rate=drop_rate,
            drop_path_rate=drop_path_rate,
            qkv_bias=qkv_bias,
            norm_cfg=norm_cfg,
            final_norm=final_norm,
            out_type=out_type,
            with_cls_token=with_cls_token,
            interpolate_mode=interpolate_mode,
            patch_cfg=patch_cfg,
            init_cfg=init_cfg)
        self.rpe_cfg = None if rpe is None else dict(rpe)
        dpr = np.linspace(0, drop_path_rate, self.num_layers)
        self.layers = ModuleList([
            TransformerLayer(
                embed_dims=self.embed_dims,
                num_heads=self.arch_settings['num_heads'],
                feedforward_channels=self.arch_settings['feedforward_channels'],
                drop_rate=drop_rate,
                drop_path_rate=float(dpr[i]),
                qkv_bias=qkv_bias,
                norm_cfg=norm_cfg,
                rpe=self.layer_rpe_cfg(i),
                fused_attn=fused_attn) for i in range(self.num_layers)
        ])
        self.frozen_stages = frozen_stages
        if frozen_stages > 0:
            self._freeze_stages()

    def init_weights(self) -> None:
        """A ``Pretrained`` init_cfg goes through the checked encoder loader: it keeps the encoder, drops the
        decoder, mask token and adversaries, resizes the APE, refuses an iRPE lookup mismatch or a load that
        matches nothing, and logs a report (``adpe_mm.models.utils.pretrained``)."""
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            from ..utils.pretrained import load_pretrained_encoder
            load_pretrained_encoder(self, cfg['checkpoint'], prefix=cfg.get('prefix', 'backbone.'))
            self._is_init = True
            return
        super().init_weights()

    def layer_rpe_cfg(self, index: int) -> Optional[dict]:
        """iRPE kwargs of block ``index`` (subclasses add adversaries here)."""
        return self.rpe_cfg

    def forward(self, x: torch.Tensor) -> tuple:
        """Images [B, C, H, W] -> tuple of features at ``out_indices`` (format set by ``out_type``)."""
        B = x.shape[0]
        x, hw = self.patch_embed(x)  # [B, N, D]
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)
        x = x + resize_pos_embed(self.pos_embed, self.patch_resolution, hw, mode=self.interpolate_mode,
                                 num_extra_tokens=self.num_extra_tokens)
        x = self.pre_norm(self.drop_after_pos(x))
        ctx = AttentionContext(tuple(hw))
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x, ctx)
            if i == len(self.layers) - 1 and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                outs.append(self._format_output(x, hw))
        return tuple(outs)
