"""The MAE+ / AdPE pretraining encoder: every crop token goes in, masked ones as a learned mask token."""
from typing import Optional, Union

import torch
from mmpretrain.registry import MODELS
from torch import nn

from ..pos_embed.sincos import grid_coords, sincos_2d, sincos_2d_table
from adpe_mm.adversary import adversary_parameter, adversary_value, irpe_adversary, parse_adversary
from ..layers.attention import AttentionContext
from ..layers.init import mae_init_
from .vit_core import ViTCore


@MODELS.register_module()
class MAEPlusViT(ViTCore):
    """Encoder of MAE+ (one crop = 7x7 tokens, all of them encoded) with the AdPE adversaries.

    Per crop, ``int(N * (1 - mask_ratio))`` tokens stay visible (12 of 49 by default) and the others are
    replaced by ``mask_token``; then the fixed sin-cos APE is added to every token, the cls token is
    prepended and all ``1 + N`` tokens run through the blocks (whose attention may carry iRPE).

    Positional information enters each token in :meth:`patch_pos_embed` (APE, where the APE adversaries
    act) and each attention logit in the blocks' iRPE (where the RPE adversaries act, on masked query rows).

    Args:
        arch (str | dict): ViT size ('b', 'l', ...) or a dict of embed_dims/num_layers/num_heads/
            feedforward_channels. Defaults to 'b'.
        img_size (int): crop size in pixels, a multiple of ``patch_size``. Defaults to 112.
        patch_size (int): patch size in pixels. Defaults to 16.
        mask_ratio (float): fraction of the tokens of every crop that is masked, in (0, 1). Defaults to 0.75.
        rpe (dict, optional): iRPE of every block (``ratio``, ``index_mode``); None for APE only.
        adversary (dict, optional): ``dict(pe='ape' | 'rpe', mode='embed' | 'coord', norm='l2' | 'linf',
            eps=float)``. APE adversaries are parameters of this module (``adv_embed`` [D] or ``adv_coord``
            (delta_y, delta_x) [2]); RPE adversaries live in each block's iRPE. None: MAE+ baseline. APE
            embedding mode takes ``form='add'`` (default: masked tokens are ``mask_token + p + a``) or
            ``'replace'`` (the authors' form: this encoder then has no mask token, masked tokens are ``p + a``).
        out_type (str): output of the unmasked forward (feature extraction). Defaults to 'raw'.
        Other arguments: see :class:`~.vit_core.ViTCore`.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 img_size: int = 112,
                 patch_size: int = 16,
                 mask_ratio: float = 0.75,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 out_type: str = 'raw',
                 rpe: Optional[dict] = None,
                 adversary: Optional[dict] = None,
                 fused_attn: bool = True,
                 init_cfg: Optional[Union[dict, list]] = None,
                 **kwargs) -> None:
        if not isinstance(img_size, int) or not isinstance(patch_size, int) or patch_size <= 0 \
                or img_size <= 0 or img_size % patch_size != 0:
            raise ValueError(f'crop size img_size={img_size!r} must be a positive multiple of '
                             f'patch_size={patch_size!r}')
        if not 0 < mask_ratio < 1:
            raise ValueError(f'mask_ratio must be in (0, 1), got {mask_ratio!r}')
        adversary = parse_adversary(adversary)
        if adversary is not None and adversary['pe'] == 'rpe':
            if rpe is None:
                raise ValueError(f'adversary {adversary} perturbs iRPE but the backbone has rpe=None')
            rpe = dict(rpe, adversary=irpe_adversary(adversary))  # every block's iRPE carries its own
        super().__init__(arch=arch, img_size=img_size, patch_size=patch_size, drop_path_rate=drop_path_rate,
                         norm_cfg=norm_cfg, out_type=out_type, rpe=rpe, fused_attn=fused_attn,
                         init_cfg=init_cfg, **kwargs)
        self.adversary = adversary
        self.mask_ratio = float(mask_ratio)
        self.num_patches = self.patch_resolution[0] * self.patch_resolution[1]
        self.num_visible = int(self.num_patches * (1 - self.mask_ratio))
        if not 0 < self.num_visible < self.num_patches:
            raise ValueError(f'mask_ratio={mask_ratio} leaves {self.num_visible} of {self.num_patches} '
                             'tokens visible; at least one must be visible and one masked')
        # The APE is the fixed sin-cos table during pretraining.
        self.pos_embed.requires_grad = False
        # The authors' APE-embed form has no mask token: its adversary takes the mask token's place.
        self.replaces_mask_token = self.adversary is not None and self.adversary.get('form') == 'replace'
        self.mask_token = None if self.replaces_mask_token else nn.Parameter(torch.zeros(1, 1, self.embed_dims))
        if self.adversary is not None and self.adversary['pe'] == 'ape':
            ball = self.adversary['norm'], self.adversary['eps']
            if self.adversary['mode'] == 'embed':
                self.adv_embed = adversary_parameter(self.embed_dims, *ball)
            else:
                self.adv_coord = adversary_parameter(2, *ball)  # (delta_y, delta_x) in patches

    def init_from_scratch(self) -> None:
        """MAE's initialisation: xavier Linear (patch embedding as a Linear), LN (1, 0), tokens N(0, .02),
        the fixed sin-cos APE; iRPE tables and adversaries start at zero. (A ``Pretrained`` init_cfg loads
        through the core's loader, which gives a pretraining encoder its mask token and adversaries too.)"""
        super().init_from_scratch()
        self.apply(mae_init_)
        self.pos_embed.data.copy_(sincos_2d_table(self.patch_resolution, self.embed_dims, cls_token=True))
        w = self.patch_embed.projection.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.projection.bias)
        nn.init.normal_(self.cls_token, std=.02)
        if self.mask_token is not None:
            nn.init.normal_(self.mask_token, std=.02)

    def random_masking(self, batch_size: int, device: torch.device,
                       generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Uniformly random mask of every crop, [B, N] bool (True = masked), ``num_visible`` False per row.

        With a ``generator`` the noise is drawn from it on the CPU and moved to ``device``.
        """
        if generator is not None:
            noise = torch.rand(batch_size, self.num_patches, generator=generator).to(device)
        else:
            noise = torch.rand(batch_size, self.num_patches, device=device)
        ids_shuffle = noise.argsort(dim=1)  # the first num_visible stay visible
        mask = torch.ones(batch_size, self.num_patches, dtype=torch.bool, device=device)
        visible = ids_shuffle[:, :self.num_visible]
        mask.scatter_(1, visible, torch.zeros_like(visible, dtype=torch.bool))  # (a tensor: traceable)
        return mask

    def fixed_masking(self, batch_size: int, device: torch.device, seed: int = 0) -> torch.Tensor:
        """The masks [B, N] bool of a probe (hooks, analysis, tools): :meth:`random_masking` from a private
        generator seeded with ``seed``, so the same seed gives the same masks and training's random stream
        is untouched."""
        return self.random_masking(batch_size, device, torch.Generator().manual_seed(seed))

    def patch_pos_embed(self, mask: torch.Tensor, adversarial: bool = True) -> torch.Tensor:
        """Positional embedding of every patch token, [B, N, D] (or [1, N, D] without an APE adversary).

        Visible tokens get ``p(y, x)``; with an APE adversary masked tokens get ``p(y, x) + adv_embed``
        (embed mode) or ``p(y + delta_y, x + delta_x)`` (coord mode). The adversary is the parameter or the
        stand-in of an attack (:func:`~adpe_mm.adversary.adversary_value`); a coordinate stand-in may hold
        one shift per sample, [B, 2].
        """
        table = self.pos_embed[:, 1:]  # [1, N, D]
        if not adversarial or self.adversary is None or self.adversary['pe'] != 'ape':
            return table
        m = mask[..., None]  # [B, N, 1]
        if self.adversary['mode'] == 'embed':
            adv = adversary_value(self, 'adv_embed')
            if adv.dim() != 1:
                raise ValueError(f'the APE embedding adversary is one vector [{self.embed_dims}], got '
                                 f'{tuple(adv.shape)} (per-sample adversaries are for coordinate modes)')
            return table + m * adv
        delta = adversary_value(self, 'adv_coord')  # [2] or [B, 2]
        rows, cols = grid_coords(self.patch_resolution, table.device)
        if delta.dim() == 2:  # one shift per sample: [B, N, D]
            shifted = sincos_2d(rows + delta[:, :1], cols + delta[:, 1:], self.embed_dims)
        else:
            shifted = sincos_2d(rows + delta[0], cols + delta[1], self.embed_dims)[None]
        return torch.where(m, shifted.to(table.dtype), table)

    def forward(self, x: torch.Tensor, mask: Optional[bool] = True, patch_mask: Optional[torch.Tensor] = None,
                adversarial: bool = True):
        """Masked encoding of crops, or plain feature extraction.

        Args:
            x (Tensor): crops [B, 3, H, W] with H = W = ``img_size``.
            mask (bool): True (default) for MIM pretraining; None/False runs the unmasked ViT forward and
                returns the tuple of :meth:`ViTCore.forward`.
            patch_mask (Tensor, optional): [B, N] bool mask to use instead of drawing one (True = masked).
            adversarial (bool): apply the adversaries (default); False gives the clean forward of the same
                weights, e.g. to measure the loss gap the adversary causes.

        Returns:
            tuple: ``(latent [B, 1 + N, D], mask [B, N] bool, True = masked)`` when masking: the mask the
            decoder and the loss take as it is (one type from the draw to the loss).
        """
        if not mask:
            return super().forward(x)
        B = x.shape[0]
        tokens, hw = self.patch_embed(x)  # [B, N, D]
        if tuple(hw) != tuple(self.patch_resolution):
            raise ValueError(f'crops of {tuple(x.shape[-2:])} px give a {tuple(hw)} grid but the encoder was '
                             f'built for img_size={self.img_size[0]} ({tuple(self.patch_resolution)} patches)')
        if patch_mask is None:
            patch_mask = self.random_masking(B, x.device)  # [B, N]
        if patch_mask.dtype != torch.bool or patch_mask.shape != (B, self.num_patches):
            raise ValueError(f'patch_mask must be a bool tensor [{B}, {self.num_patches}] (True = masked), got '
                             f'{patch_mask.dtype} {tuple(patch_mask.shape)}')
        fill = tokens.new_zeros(()) if self.mask_token is None else self.mask_token.to(tokens.dtype)
        tokens = torch.where(patch_mask[..., None], fill, tokens)
        tokens = tokens + self.patch_pos_embed(patch_mask, adversarial)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(B, -1, -1)
        tokens = torch.cat([cls, tokens], dim=1)  # [B, 1 + N, D]
        query_mask = nn.functional.pad(patch_mask, (1, 0), value=False)  # the cls row is never perturbed
        ctx = AttentionContext(tuple(hw), query_mask if adversarial else None)
        for layer in self.layers:
            tokens = layer(tokens, ctx)
        if self.final_norm:
            tokens = self.ln1(tokens)
        return tokens, patch_mask
