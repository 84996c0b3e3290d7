"""Analytic forward FLOPs of MAE / MAE+ / AdPE pretraining, and mmengine's counter for checking them.

Used by ``tools/analysis_tools/benchmark_pretrain.py``; the test checks the formula against the counter.
One multiply-add counts as one FLOP (mmengine's convention).
"""
import math
from typing import Dict, NamedTuple, Optional, Sequence


class RPESpec(NamedTuple):
    """iRPE of one block: ``buckets`` table columns, ``index_mode`` and the adversary mode (or None)."""
    buckets: int
    index_mode: str = 'integer'
    adversary: Optional[str] = None


class BlockSpec(NamedTuple):
    """One pre-norm ViT block: width D, FFN hidden width F, heads H, optional iRPE."""
    dims: int
    mlp_hidden: int
    heads: int
    rpe: Optional[RPESpec] = None


def block_flops(tokens: int, block: BlockSpec) -> int:
    """Forward multiply-adds of one block on ``tokens`` tokens (one sample)."""
    L, D, F = tokens, block.dims, block.mlp_hidden
    flops = L * D * 3 * D + L * D * D + 2 * L * D * F  # qkv, proj, FFN
    flops += 2 * L * L * D  # q k^T and attn v over all heads
    rpe = block.rpe
    if rpe is not None:
        flops += L * D * rpe.buckets  # q @ W for every head: [L, d] x [d, nb]
        if rpe.adversary == 'embed':
            flops += L * D * rpe.buckets  # q @ A of the per-bucket adversary
        if rpe.index_mode != 'integer':  # the relaxed and the reference lookups interpolate
            # the dense interpolation contraction [H, L, nb] x [L, nb, L]; coord mode adds the shifted one
            flops += block.heads * L * rpe.buckets * L * (2 if rpe.adversary == 'coord' else 1)
    return flops


def vit_mim_flops(*, patch_size: int, in_chans: int, embedded_patches: int, encoder_tokens: int,
                  encoder_blocks: Sequence[BlockSpec], decoder_in_tokens: int, decoder_tokens: int,
                  decoder_blocks: Sequence[BlockSpec], pred_dims: int) -> Dict[str, int]:
    """Forward multiply-adds of one masked-image-modeling sample (one image for MAE, one crop for MAE+).

    Norms, activations, softmax, masking and the loss are element-wise and left out (<1% for ViT-B).

    Args:
        patch_size, in_chans: the patch embedding (a conv = a Linear of ``in_chans * patch_size**2`` inputs).
        embedded_patches: patches that go through the patch embedding (MAE and MAE+: all of them).
        encoder_tokens: tokens per encoder block (MAE: 1 + visible; MAE+: 1 + all patches).
        encoder_blocks, decoder_blocks: the blocks of each stack.
        decoder_in_tokens: tokens through ``decoder_embed`` (the encoder output).
        decoder_tokens: tokens per decoder block and through the prediction layer (MAE: 1 + all patches).
        pred_dims: outputs of the prediction layer (``patch_size**2 * in_chans``).

    Returns:
        dict: ``patch_embed``, ``encoder``, ``decoder`` (embed, blocks and prediction) and ``total``.
    """
    enc_dims, dec_dims = encoder_blocks[0].dims, decoder_blocks[0].dims
    out = dict(patch_embed=embedded_patches * in_chans * patch_size**2 * enc_dims,
               encoder=sum(block_flops(encoder_tokens, b) for b in encoder_blocks),
               decoder=decoder_in_tokens * enc_dims * dec_dims
               + sum(block_flops(decoder_tokens, b) for b in decoder_blocks) + decoder_tokens * dec_dims * pred_dims)
    out['total'] = sum(out.values())
    return out


def block_spec(block) -> BlockSpec:
    """:class:`BlockSpec` of a block with mmpretrain's layout (``attn.qkv``, ``attn.num_heads``, ``ffn``)."""
    rpe = getattr(block.attn, 'rpe', None)
    rpe_spec = None if rpe is None else RPESpec(rpe.num_buckets, rpe.index_mode, rpe.adversary_mode)
    return BlockSpec(block.attn.qkv.in_features, block.ffn.layers[0][0].out_features, block.attn.num_heads,
                     rpe_spec)


def model_flops(model) -> Dict[str, int]:
    """:func:`vit_mim_flops` of one sample of a built ``MAE`` (mmpretrain) or ``MAEPlus`` model."""
    from mmpretrain.models.selfsup.mae import MAEViT

    from adpe_mm.models.backbones.mae_plus_vit import MAEPlusViT
    backbone, neck = model.backbone, model.neck
    patches = backbone.patch_resolution[0] * backbone.patch_resolution[1]
    if isinstance(backbone, MAEPlusViT):  # every token is encoded and decoded
        enc_tokens, dec_tokens = 1 + patches, 1 + patches
    elif isinstance(backbone, MAEViT):  # visible tokens only; the decoder re-inserts mask tokens
        enc_tokens, dec_tokens = 1 + int(patches * (1 - backbone.mask_ratio)), 1 + patches
    else:
        raise NotImplementedError(f'no FLOP formula for {type(backbone).__name__}; use --flops counter')
    proj = backbone.patch_embed.projection
    return vit_mim_flops(
        patch_size=proj.kernel_size[0], in_chans=proj.in_channels, embedded_patches=patches,
        encoder_tokens=enc_tokens, encoder_blocks=[block_spec(b) for b in backbone.layers],
        decoder_in_tokens=enc_tokens, decoder_tokens=dec_tokens,
        decoder_blocks=[block_spec(b) for b in neck.decoder_blocks], pred_dims=neck.decoder_pred.out_features)


def sdpa_flop_jit(inputs, outputs) -> int:
    """mmengine FlopAnalyzer handle of ``aten::scaled_dot_product_attention``: q k^T and attn v."""
    from mmengine.analysis.jit_handles import get_shape
    q, k, v = (get_shape(x) for x in inputs[:3])
    return math.prod(q[:-1]) * k[-2] * (q[-1] + v[-1])


def counter_flops(model, inputs, data_samples) -> int:
    """Forward FLOPs of ``model.loss(inputs, ...)`` by mmengine's ``FlopAnalyzer`` (jit trace).

    MAE+ models are traced through ``reconstruct`` + the head's loss with a mask drawn outside the trace,
    which is ``loss`` with the mask given (the random mask would otherwise be baked into the trace). The model is not registered as a submodule of the traced
    wrapper (its weights become trace constants, so they are made ``requires_grad=False`` while tracing):
    tracing collects the state dict, and iRPE's extra state (its index mode) is not a tensor.
    """
    import torch
    from mmengine.analysis import FlopAnalyzer

    class LossForward(torch.nn.Module):

        def __init__(self):
            super().__init__()
            object.__setattr__(self, 'model', model)

        def forward(self, *crops):
            if not hasattr(self.model, 'reconstruct'):
                return self.model.loss(list(crops) if isinstance(inputs, list) else crops[0], data_samples)['loss']
            batch = torch.cat(crops, dim=0)
            pred, mask = self.model.reconstruct(batch, patch_mask=fixed_mask)
            return self.model.head.loss(pred, batch, mask)

    args = tuple(inputs) if isinstance(inputs, list) else (inputs, )
    fixed_mask = None
    if hasattr(model, 'reconstruct'):
        fixed_mask = model.backbone.random_masking(sum(a.shape[0] for a in args), args[0].device)
    analyzer = FlopAnalyzer(LossForward(), args)
    analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flop_jit)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in trainable:
            p.requires_grad_(False)
        with torch.no_grad():
            return int(analyzer.total())
    finally:
        for p in trainable:
            p.requires_grad_(True)
