"""The one ViT core: blocks built once, by adpe_mm, and one pretrained-loading path for all three ViTs."""
import os.path as osp

import pytest
import torch
from mmpretrain.models import VisionTransformer
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer

from adpe_mm.models.backbones import IRPEViT, MAEPlusViT, PlainViT, ViTCore
from adpe_mm.models.layers import TransformerLayer

MICRO = dict(embed_dims=16, num_layers=3, num_heads=2, feedforward_channels=32)
LEGACY = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'fixtures', 'legacy')


def test_no_mmpretrain_block_is_built_and_thrown_away(monkeypatch):
    built = []
    original = TransformerEncoderLayer.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(TransformerEncoderLayer, '__init__', counting)
    for vit in (IRPEViT(arch=MICRO, img_size=32), MAEPlusViT(arch=MICRO, img_size=32),
                PlainViT(arch=MICRO, img_size=32, window_size=0, out_indices=(2, ))):
        assert isinstance(vit, ViTCore)
        assert len(vit.layers) == 3 and all(type(layer) is TransformerLayer for layer in vit.layers)
    assert not built


def test_without_irpe_the_core_has_the_state_dict_of_mmpretrains_vit():
    ours = IRPEViT(arch=MICRO, img_size=32, drop_path_rate=0.1).state_dict()
    theirs = VisionTransformer(arch=MICRO, img_size=32, drop_path_rate=0.1).state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)


@pytest.mark.parametrize('indices,match', [(5, r'out_indices=\(5,\) is out of range for 3 blocks'),
                                           ((-4, ), r'out_indices=\(-4,\) is out of range')])
def test_out_of_range_block_indices_are_named(indices, match):
    with pytest.raises(ValueError, match=match):
        IRPEViT(arch=MICRO, img_size=32, out_indices=indices)


def test_negative_out_indices_count_from_the_end_and_blocks_get_the_drop_path_schedule():
    vit = IRPEViT(arch=MICRO, img_size=32, out_indices=(-1, 0), drop_path_rate=0.2)
    assert vit.out_indices == [2, 0]
    rates = [getattr(layer.drop_path, 'drop_prob', 0.) for layer in vit.layers]
    assert rates == pytest.approx([0., 0.1, 0.2])


def test_a_pretraining_encoder_loads_its_own_checkpoint_through_the_core_loader():
    """init_cfg=Pretrained on the pretraining encoder keeps mask token, iRPE tables and adversaries."""
    path = osp.join(LEGACY, 'adpe_rpe_coord.pth')
    state = torch.load(path, weights_only=True)['state_dict']
    micro = dict(embed_dims=16, num_layers=2, num_heads=2, feedforward_channels=32)
    adversary = dict(pe='rpe', mode='coord', norm='linf', eps=3.)
    vit = MAEPlusViT(arch=micro, img_size=112, rpe=dict(ratio=1.9), adversary=adversary,
                     init_cfg=dict(type='Pretrained', checkpoint=path))
    vit.init_weights()
    got = vit.state_dict()
    for key in ('mask_token', 'layers.1.attn.rpe.lookup_table', 'layers.1.attn.rpe.adv_coord', 'ln1.weight'):
        torch.testing.assert_close(got[key], state['backbone.' + key])
