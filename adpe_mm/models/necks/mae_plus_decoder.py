"""The light MAE+ decoder: it sees only the 1 + N encoder outputs of a crop, no inserted mask tokens."""
from typing import Optional, Union

import torch
from mmengine.model import BaseModule, ModuleList
from mmpretrain.models.utils import build_norm_layer
from mmpretrain.registry import MODELS
from torch import nn

from ..pos_embed.sincos import sincos_2d_table
from adpe_mm.adversary import irpe_adversary, parse_adversary
from ..layers.attention import AttentionContext
from ..layers.init import mae_init_
from ..layers.transformer_layer import TransformerLayer


@MODELS.register_module()
class MAEPlusDecoder(BaseModule):
    """Linear D -> d, + fixed sin-cos PE, ``num_layers`` blocks, LN, Linear d -> p*p*C; cls dropped.

    Because every crop token went through the encoder (masked ones as the mask token), the decoder input is
    the encoder output itself: 1 + N tokens per crop (50 for 112 px), not MAE's 197.

    Args:
        num_patches (int): N, tokens per crop (a square grid). Defaults to 49.
        patch_size (int): pixels per patch side. Defaults to 16.
        in_chans (int): image channels. Defaults to 3.
        embed_dim (int): encoder width D. Defaults to 768.
        decoder_embed_dim (int): decoder width d. Defaults to 512.
        decoder_depth (int): decoder blocks. Defaults to 8.
        decoder_num_heads (int): decoder heads. Defaults to 16.
        mlp_ratio (float): FFN width / d. Defaults to 4.
        norm_cfg (dict): norm layers. Defaults to LN with eps 1e-6.
        rpe (dict, optional): iRPE of every decoder block (its own table each); None for APE only.
        adversary (dict, optional): the AdPE adversary config of the model (see ``MAEPlusViT``). Only an RPE
            adversary acts here (on masked query rows of every decoder block); APE adversaries act on the
            encoder input only and are ignored.
        fused_attn (bool): scaled_dot_product_attention (default) or the reference attention path.
    """

    def __init__(self,
                 num_patches: int = 49,
                 patch_size: int = 16,
                 in_chans: int = 3,
                 embed_dim: int = 768,
                 decoder_embed_dim: int = 512,
                 decoder_depth: int = 8,
                 decoder_num_heads: int = 16,
                 mlp_ratio: float = 4.,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 rpe: Optional[dict] = None,
                 adversary: Optional[dict] = None,
                 fused_attn: bool = True,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        side = int(round(num_patches**.5))
        if side * side != num_patches:
            raise ValueError(f'num_patches={num_patches} is not a square grid')
        self.grid = (side, side)
        self.num_patches = num_patches
        adversary = parse_adversary(adversary)
        layer_rpe = rpe
        if adversary is not None and adversary['pe'] == 'rpe':
            if rpe is None:
                raise ValueError(f'adversary {adversary} perturbs iRPE but the decoder has rpe=None')
            layer_rpe = dict(rpe, adversary=irpe_adversary(adversary))
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim)
        self.register_buffer(
            'decoder_pos_embed', sincos_2d_table(self.grid, decoder_embed_dim, cls_token=True), persistent=False)
        self.decoder_blocks = ModuleList([
            TransformerLayer(decoder_embed_dim, decoder_num_heads, int(mlp_ratio * decoder_embed_dim),
                             norm_cfg=norm_cfg, rpe=layer_rpe, fused_attn=fused_attn)
            for _ in range(decoder_depth)
        ])
        self.decoder_norm = build_norm_layer(norm_cfg, decoder_embed_dim)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_size**2 * in_chans)

    def init_weights(self) -> None:
        super().init_weights()
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            return
        self.apply(mae_init_)

    def forward(self, latent: torch.Tensor, mask: torch.Tensor, adversarial: bool = True) -> torch.Tensor:
        """Encoder output [B, 1 + N, D] and mask [B, N] bool (True = masked) -> pixel predictions [B, N, p*p*C].

        ``adversarial=False`` runs without the (RPE) adversaries.
        """
        if latent.shape[1] != self.num_patches + 1:
            raise ValueError(f'decoder built for {self.num_patches} + 1 tokens got {latent.shape[1]}')
        x = self.decoder_embed(latent) + self.decoder_pos_embed.to(latent.dtype)  # [B, 1 + N, d]
        query_mask = nn.functional.pad(mask, (1, 0), value=False)  # the cls row is never perturbed
        ctx = AttentionContext(self.grid, query_mask if adversarial else None)
        for block in self.decoder_blocks:
            x = block(x, ctx)
        x = self.decoder_pred(self.decoder_norm(x))
        return x[:, 1:]  # drop cls: [B, N, p*p*C]
