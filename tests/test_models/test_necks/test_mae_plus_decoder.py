import pytest
import torch
from mmpretrain.registry import MODELS

from _tiny import quiet

quiet()


def build(**kwargs):
    m = MODELS.build(dict(type='MAEPlusDecoder', embed_dim=64, decoder_embed_dim=32, decoder_depth=2,
                          decoder_num_heads=4, **kwargs))
    m.init_weights()
    return m


def test_predicts_pixels_of_every_patch_from_the_fifty_encoder_outputs():
    dec = build()
    pred = dec(torch.randn(3, 50, 64), torch.ones(3, 49))
    assert pred.shape == (3, 49, 16 * 16 * 3)


def test_refuses_a_token_count_other_than_one_plus_n():
    with pytest.raises(ValueError, match='got 197'):
        build()(torch.randn(1, 197, 64), torch.ones(1, 196))


def test_rpe_adversary_acts_in_every_decoder_block_on_masked_rows():
    dec = build(rpe=dict(ratio=1.9), adversary=dict(pe='rpe', mode='embed', norm='l2', eps=3.))
    advs = [n for n, _ in dec.named_parameters() if n.endswith('adv_embed')]
    assert advs == ['decoder_blocks.0.attn.rpe.adv_embed', 'decoder_blocks.1.attn.rpe.adv_embed']
    with torch.no_grad():
        for n, p in dec.named_parameters():
            if 'adv_' in n or 'lookup_table' in n:
                p.normal_()
    latent = torch.randn(2, 50, 64)
    mask = torch.zeros(2, 49)
    clean = dec(latent, mask)
    torch.testing.assert_close(dec(latent, mask, adversarial=False), clean)  # nothing masked: no effect
    mask[:, 3] = 1
    assert not torch.allclose(dec(latent, mask), clean)


def test_ape_adversary_is_ignored_by_the_decoder():
    dec = build(adversary=dict(pe='ape', mode='embed', norm='l2', eps=3.))
    assert not [n for n, _ in dec.named_parameters() if 'adv_' in n]
