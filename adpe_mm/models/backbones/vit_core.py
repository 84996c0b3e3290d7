"""The one ViT of adpe_mm: mmpretrain's VisionTransformer with blocks that may carry iRPE, built once.

The pretraining encoder (:class:`~.MAEPlusViT`), the classification backbone (:class:`~.IRPEViT`) and the
dense-prediction backbone (:class:`~.PlainViT`) all specialise :class:`ViTCore`, so they share
* everything of mmpretrain's ``VisionTransformer`` but its blocks: patch embedding, cls token, APE (resized
  bicubically on load and at run time), pre/final norms, output formats, ``get_layer_depth`` for layer-wise
  lr decay, freezing;
* the blocks: :class:`~adpe_mm.models.layers.TransformerLayer`, whose parameter names are those of
  mmpretrain's ``TransformerEncoderLayer`` (without iRPE the state dict is mmpretrain's ViT's), built here
  and only here (mmpretrain is asked for zero blocks, so none is built and thrown away);
* the pretrained-loading path: a ``dict(type='Pretrained', checkpoint=...)`` init_cfg goes through
  :func:`~.pretrained.load_pretrained_encoder` (keeps the encoder, resizes the APE, refuses an iRPE lookup
  mismatch or a load that matches nothing, logs a report).
"""
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.model import ModuleList
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed

from ..layers.attention import AttentionContext
from ..layers.transformer_layer import TransformerLayer
from .pretrained import load_pretrained_encoder


def arch_settings(arch: Union[str, dict]) -> dict:
    """mmpretrain's ViT size ('b', 'base', 'l', ...) or a dict of the four sizes, checked."""
    if isinstance(arch, str):
        if arch.lower() not in VisionTransformer.arch_zoo:
            raise ValueError(f'arch={arch!r} is not one of {sorted(VisionTransformer.arch_zoo)}')
        return dict(VisionTransformer.arch_zoo[arch.lower()])
    needed = {'embed_dims', 'num_layers', 'num_heads', 'feedforward_channels'}
    if not isinstance(arch, dict) or not needed <= set(arch):
        raise ValueError(f'arch must be a name or a dict with keys {sorted(needed)}, got {arch!r}')
    return dict(arch)


def block_indices(indices: Union[int, Sequence[int]], num_layers: int, name: str) -> Tuple[int, ...]:
    """Block indices (negative ones count from the end), checked against the depth."""
    indices = (indices, ) if isinstance(indices, int) else tuple(indices)
    out = tuple(i + num_layers if i < 0 else i for i in indices)
    if not all(0 <= i < num_layers for i in out):
        raise ValueError(f'{name}={indices} is out of range for {num_layers} blocks')
    return out


def is_pretrained_init(init_cfg) -> bool:
    return isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained'


class ViTCore(VisionTransformer):
    """mmpretrain's ViT whose blocks may add the iRPE key bias to their attention logits (not registered:
    build :class:`~.IRPEViT`, :class:`~.MAEPlusViT` or :class:`~.PlainViT`).

    Args:
        rpe (dict, optional): iRPE of every block, kwargs of :class:`~adpe_mm.models.pos_embed.IRPE`
            (``ratio``, ``index_mode``; the pretraining encoder adds its ``adversary``). None for APE only.
        fused_attn (bool | str): the attention path of every block (see
            :class:`~adpe_mm.models.layers.Attention`). Defaults to True.
        Other arguments are those of mmpretrain's ``VisionTransformer``.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 img_size: Union[int, Tuple[int, int]] = 224,
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
                 fused_attn: Union[bool, str] = True,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        settings = arch_settings(arch)
        # mmpretrain builds everything but the blocks (asked for none); the blocks are built below, once.
        super().__init__(arch=dict(settings, num_layers=0), img_size=img_size, patch_size=patch_size,
                         in_channels=in_channels, out_indices=0, drop_rate=drop_rate, qkv_bias=qkv_bias,
                         norm_cfg=norm_cfg, final_norm=final_norm, out_type=out_type,
                         with_cls_token=with_cls_token, interpolate_mode=interpolate_mode, patch_cfg=patch_cfg,
                         init_cfg=init_cfg)
        self.arch_settings = settings
        self.num_layers = settings['num_layers']
        self.out_indices = list(block_indices(out_indices, self.num_layers, 'out_indices'))
        self.rpe_cfg = None if rpe is None else dict(rpe)
        dpr = np.linspace(0, drop_path_rate, self.num_layers)
        self.layers = ModuleList([
            TransformerLayer(embed_dims=self.embed_dims, num_heads=settings['num_heads'],
                             feedforward_channels=settings['feedforward_channels'], drop_rate=drop_rate,
                             drop_path_rate=float(dpr[i]), qkv_bias=qkv_bias, norm_cfg=norm_cfg, rpe=self.rpe_cfg,
                             fused_attn=fused_attn) for i in range(self.num_layers)
        ])
        self.frozen_stages = frozen_stages
        if frozen_stages > 0:
            self._freeze_stages()

    def init_weights(self) -> None:
        """A ``Pretrained`` init_cfg goes through the checked encoder loader; otherwise
        :meth:`init_from_scratch`."""
        if is_pretrained_init(self.init_cfg):
            cfg = self.init_cfg
            load_pretrained_encoder(self, cfg['checkpoint'], prefix=cfg.get('prefix', 'backbone.'))
            self._is_init = True
            return
        self.init_from_scratch()

    def init_from_scratch(self) -> None:
        """mmpretrain's ViT initialisation (subclasses add theirs)."""
        super().init_weights()

    def train(self, mode: bool = True) -> 'ViTCore':
        """``nn.Module.train``, returning the module (mmpretrain's ``BaseBackbone.train`` returns None)."""
        super().train(mode)
        return self

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
