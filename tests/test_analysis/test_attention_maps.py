"""Attention weights read off MAE+ (adpe_mm Attention with iRPE) and stock MAE (mmpretrain MultiheadAttention)."""
import logging

import pytest
import torch
from mmengine.logging import MMLogger

import adpe_mm  # noqa: F401  (registers the models)
from adpe_mm.analysis import attention_weights, query_maps, query_patch
from adpe_mm.analysis.attention import unmasked_forward
from mmpretrain.registry import MODELS

ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)


def quiet():
    MMLogger.get_instance('mmengine').setLevel(logging.WARNING)


def mae_plus_vit():
    """A tiny MAE+ encoder with non-zero iRPE tables (they start at zero, where the bias is invisible)."""
    quiet()
    torch.manual_seed(0)
    backbone = MODELS.build(dict(type='MAEPlusViT', arch=ARCH, img_size=112, rpe=dict(ratio=1.9)))
    backbone.init_weights()
    with torch.no_grad():
        for name, p in backbone.named_parameters():
            if name.endswith('lookup_table'):
                p.normal_(0, .5)
    return backbone


def mae_vit():
    quiet()
    torch.manual_seed(0)
    backbone = MODELS.build(dict(type='MAEViT', arch=ARCH, img_size=96, patch_size=16))
    backbone.init_weights()
    return backbone


def block_input_output(backbone, images, index=0):
    """Input [B, L, D] and output of block ``index``'s attention in the plain unmasked forward."""
    seen = {}
    handle = backbone.layers[index].attn.register_forward_hook(
        lambda module, args, output: seen.update(x=args[0], y=output))
    backbone.eval()
    with torch.no_grad():
        unmasked_forward(backbone, images)
    handle.remove()
    return seen['x'], seen['y']


@pytest.mark.parametrize('build,size', [(mae_plus_vit, 112), (mae_vit, 96)], ids=['MAEPlusViT-iRPE', 'MAEViT'])
def test_attention_weights_reproduce_the_attention_output(build, size):
    backbone = build()
    images = torch.randn(2, 3, size, size)
    x, y = block_input_output(backbone, images, index=1)
    weights = attention_weights(backbone, images, [1])[1]  # [B, H, L, L]
    attn = backbone.layers[1].attn
    B, L, D = x.shape
    v = attn.qkv(x).reshape(B, L, 3, 2, D // 2)[:, :, 2].transpose(1, 2)  # [B, H, L, d]
    expected = attn.proj((weights @ v).transpose(1, 2).reshape(B, L, D))
    assert torch.allclose(expected, y, atol=1e-5)


def test_stock_mae_weights_cover_every_patch_token():
    backbone = mae_vit()
    weights = attention_weights(backbone, torch.randn(2, 3, 96, 96))[0]
    assert weights.shape == (2, 2, 1 + 36, 1 + 36)  # cls + 6x6 patches, none dropped by masking


def test_query_maps_are_the_query_rows_over_the_patch_keys():
    attn = torch.arange(25, dtype=torch.float32).reshape(1, 1, 5, 5)  # cls + a 2x2 grid
    maps = query_maps(attn, (2, 2), [(1, 0)], extra_tokens=1)
    assert torch.equal(maps, torch.tensor([[[[16., 17.], [18., 19.]]]]))  # row 1 + 1*2 + 0 = 3, keys 1..4


def test_query_points_are_image_fractions():
    assert [query_patch(p, (7, 7)) for p in [(0, 0), (.5, .5), (1, 1), (.99, .1)]] == [(0, 0), (3, 3), (6, 6),
                                                                                       (6, 0)]
