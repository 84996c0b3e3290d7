import pytest
import torch
from mmpretrain.models.utils import build_2d_sincos_position_embedding
from mmpretrain.registry import MODELS

from _tiny import TINY_ARCH, quiet

quiet()


def build(**kwargs):
    kwargs.setdefault('arch', TINY_ARCH)
    m = MODELS.build(dict(type='MAEPlusViT', **kwargs))
    m.init_weights()
    return m


def test_token_and_mask_counts_per_crop():
    enc = build()
    latent, mask = enc(torch.randn(5, 3, 112, 112))
    assert latent.shape == (5, 50, 64)  # cls + all 49 tokens of every crop
    assert mask.shape == (5, 49)
    assert mask.sum(1).tolist() == [37.] * 5  # keep int(49 * 0.25) = 12
    assert not torch.equal(mask[0], mask[1])  # every crop draws its own mask


def test_mask_token_replaces_exactly_the_masked_tokens():
    enc = build()
    x = torch.randn(3, 3, 112, 112)
    seen = {}
    enc.layers[0].register_forward_pre_hook(lambda m, args: seen.setdefault('tokens', args[0].detach()))
    _, mask = enc(x)
    tokens = seen['tokens'][:, 1:] - enc.pos_embed[:, 1:]  # remove the APE
    patches, _ = enc.patch_embed(x)
    masked = mask.bool()
    torch.testing.assert_close(tokens[masked], enc.mask_token[0].expand(int(masked.sum()), -1))
    torch.testing.assert_close(tokens[~masked], patches[~masked])
    # and no visible token equals the mask token
    assert (tokens[~masked] - enc.mask_token[0]).abs().amax(-1).min() > 1e-3


def test_masked_pixels_do_not_reach_the_encoder():
    enc = build()
    x = torch.randn(2, 3, 112, 112)
    patch_mask = torch.zeros(2, 49, dtype=torch.bool)
    patch_mask[:, :37] = True  # the first 37 patches (rows 0-4 and two of row 5)
    out, _ = enc(x, patch_mask=patch_mask)
    y = x.clone()
    y[:, :, :16, :16] += 10  # patch 0: masked
    torch.testing.assert_close(enc(y, patch_mask=patch_mask)[0], out)
    y = x.clone()
    y[:, :, -16:, -16:] += 10  # patch 48: visible
    assert not torch.allclose(enc(y, patch_mask=patch_mask)[0], out)


def test_ape_is_mmpretrains_fixed_sincos_table():
    enc = build()
    torch.testing.assert_close(enc.pos_embed.data, build_2d_sincos_position_embedding(7, 64, cls_token=True))
    assert not enc.pos_embed.requires_grad


def test_ape_embed_adversary_moves_masked_tokens_only():
    enc = build(adversary=dict(pe='ape', mode='embed', norm='l2', eps=3.))
    mask = torch.rand(2, 49) > 0.5
    with torch.no_grad():
        enc.adv_embed.normal_()
    pe = enc.patch_pos_embed(mask)
    diff = (pe - enc.pos_embed[:, 1:]).abs().sum(-1)
    assert torch.all(diff[mask] > 0) and torch.all(diff[~mask] == 0)


def test_ape_coord_adversary_at_zero_is_the_clean_table_and_has_gradient():
    enc = build(adversary=dict(pe='ape', mode='coord', norm='linf', eps=3.))
    mask = torch.rand(2, 49) > 0.5
    pe = enc.patch_pos_embed(mask)
    assert torch.equal(pe, enc.pos_embed[:, 1:].expand(2, -1, -1))
    latent, _ = enc(torch.randn(2, 3, 112, 112))
    (latent * torch.randn_like(latent)).sum().backward()
    assert enc.adv_coord.grad.abs().sum() > 0


def test_ape_coord_adversary_shifts_masked_coordinates():
    enc = build(adversary=dict(pe='ape', mode='coord', norm='linf', eps=3.))
    with torch.no_grad():
        enc.adv_coord.copy_(torch.tensor([1., 0.]))  # one row down
    mask = torch.ones(1, 49, dtype=torch.bool)
    pe = enc.patch_pos_embed(mask)[0]
    table = enc.pos_embed[0, 1:]
    torch.testing.assert_close(pe[:42], table[7:])  # token (r, c) now reads the embedding of (r + 1, c)


def test_unmasked_forward_and_other_grid_sizes():
    enc = build(out_type='avg_featmap', rpe=dict(ratio=1.9))
    (feat,) = enc(torch.randn(2, 3, 224, 224), mask=None)  # 14x14 grid, APE resized on the fly
    assert feat.shape == (2, 64)


def test_layer_depth_for_layer_wise_decay():
    enc = build()
    assert enc.get_layer_depth('layers.1.attn.qkv.weight') == (2, 4)
    assert enc.get_layer_depth('patch_embed.projection.weight') == (0, 4)


@pytest.mark.parametrize('kwargs,match', [
    (dict(img_size=100), 'img_size=100'),
    (dict(mask_ratio=0.), 'mask_ratio.*0'),
    (dict(mask_ratio=1.0), 'mask_ratio.*1'),
    (dict(mask_ratio=1.5), 'mask_ratio.*1.5'),
    (dict(mask_ratio=0.99), 'leaves 0'),
    (dict(adversary=dict(pe='ape', mode='embed', norm='l2', eps=0.)), 'eps.*0'),
    (dict(adversary=dict(pe='ape', mode='embed', norm='l2', eps=-1)), 'eps.*-1'),
    (dict(adversary=dict(pe='ape', mode='embed', norm='l1', eps=1.)), "'l1'"),
    (dict(adversary=dict(pe='ape', mode='angle', norm='l2', eps=1.)), "'angle'"),
    (dict(adversary=dict(pe='xpe', mode='embed', norm='l2', eps=1.)), "'xpe'"),
    (dict(adversary=dict(pe='rpe', mode='embed', norm='l2', eps=1.)), 'rpe=None'),
    (dict(adversary=dict(pe='ape', mode='embed', norm='l2', eps=1., extra=1)), 'extra'),
])
def test_bad_config_values_fail_at_build_naming_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='MAEPlusViT', arch=TINY_ARCH, **kwargs))


def test_wrong_crop_size_at_run_time_is_named():
    enc = build()
    with pytest.raises(ValueError, match='img_size=112'):
        enc(torch.randn(1, 3, 96, 96))


def test_pretrained_init_of_a_pretraining_encoder_keeps_mask_token_and_adversaries(tmp_path):
    adv = dict(pe='ape', mode='embed', norm='l2', eps=3.)
    src = build(adversary=adv)
    with torch.no_grad():
        src.adv_embed.normal_()
    ckpt = tmp_path / 'pretrain.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in src.state_dict().items()}}, ckpt)
    dst = MODELS.build(dict(type='MAEPlusViT', arch=TINY_ARCH, adversary=adv,
                            init_cfg=dict(type='Pretrained', checkpoint=str(ckpt), prefix='backbone.')))
    dst.init_weights()
    for key, value in src.state_dict().items():
        torch.testing.assert_close(dst.state_dict()[key], value, msg=key)
