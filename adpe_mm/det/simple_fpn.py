"""ViTDet's simple feature pyramid: strides 4, 8, 16, 32 (+ 64 by max pooling) from one stride-16 map."""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from mmpretrain.models.utils import LayerNorm2d
from torch import nn

# LayerNorm over the channels of [B, C, H, W] maps (mmpretrain's), under the name ViTDet configs use.
if 'LN2d' not in MODELS.module_dict:
    MODELS.register_module('LN2d', module=LayerNorm2d)


@MODELS.register_module()
class SimpleFPN(BaseModule):
    """Pyramid of a plain ViT's last feature map (ViTDet, Li et al. 2022).

    Per scale factor: 4 -> deconv(D, D/2) + norm + GELU + deconv(D/2, D/4); 2 -> deconv(D, D/2); 1 -> the
    map; 0.5 -> 2x2 max pooling; then a 1x1 conv to ``out_channels`` + norm and a 3x3 conv + norm. Extra
    levels beyond the scale factors (``num_outs``) are stride-2 subsamplings of the last one (Detectron2's
    LastLevelMaxPool), e.g. P6 for the RPN.

    Args:
        in_channels (int): D, the backbone's channels.
        out_channels (int): channels of every level. Defaults to 256.
        scale_factors (Sequence[float]): resampling of each level relative to the input. Defaults to
            (4.0, 2.0, 1.0, 0.5): strides 4-32 from a stride-16 map.
        num_outs (int): number of outputs (>= len(scale_factors)). Defaults to 5.
        norm_cfg (dict): norm after every conv. Defaults to LN2d.
    """

    def __init__(self, in_channels: int, out_channels: int = 256,
                 scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5), num_outs: int = 5,
                 norm_cfg: dict = dict(type='LN2d', eps=1e-6), init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_outs < len(scale_factors):
            raise ValueError(f'num_outs={num_outs} < {len(scale_factors)} scale factors')
        self.num_outs = num_outs
        D = in_channels
        self.resamplers = nn.ModuleList()
        self.lateral_convs = nn.ModuleList()
        self.output_convs = nn.ModuleList()
        for scale in scale_factors:
            if scale == 4.0:
                resample = nn.Sequential(
                    nn.ConvTranspose2d(D, D // 2, 2, stride=2), build_norm_layer(norm_cfg, D // 2)[1], nn.GELU(),
                    nn.ConvTranspose2d(D // 2, D // 4, 2, stride=2))
                channels = D // 4
            elif scale == 2.0:
                resample, channels = nn.ConvTranspose2d(D, D // 2, 2, stride=2), D // 2
            elif scale == 1.0:
                resample, channels = nn.Identity(), D
            elif scale == 0.5:
                resample, channels = nn.MaxPool2d(2, stride=2), D
            else:
                raise ValueError(f'scale factor {scale} is not one of 4, 2, 1, 0.5')
            self.resamplers.append(resample)
            self.lateral_convs.append(ConvModule(channels, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None))
            self.output_convs.append(
                ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=norm_cfg, act_cfg=None))

    def forward(self, inputs: Tuple[torch.Tensor, ...]) -> Tuple[torch.Tensor, ...]:
        """(..., [B, D, H, W]) -> ``num_outs`` maps [B, out_channels, H * s, W * s], finest first."""
        x = inputs[-1]
        outs = [out(lat(resample(x))) for resample, lat, out in zip(self.resamplers, self.lateral_convs,
                                                                   self.output_convs)]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs)
