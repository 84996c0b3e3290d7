"""The transferred iRPE encoder attends exactly as in pretraining: same formula, same lookup, same tables.

The first block's attention logits of the pretraining encoder (built from the pretraining config and loaded
with its own checkpoint) and of the fine-tuning backbone (built from the fine-tune config and initialised by
its init_cfg, the path tools/train.py takes) are compared on the same tokens of the pretraining grid.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

import adpe_mm  # noqa: F401
from adpe_mm.models.layers import AttentionContext
from conftest import REPO_ROOT
from transfer_helpers import TINY_ARCH, pretrain_config
from transfer_helpers import ckpts  # noqa: F401  (session fixture: the tiny pretraining checkpoints)


def pretraining_encoder(ckpt):
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(pretrain_config('rpe'))
    model = MODELS.build(cfg.model)
    load_checkpoint(model, ckpt, map_location='cpu', strict=True)
    model.eval()
    return model.backbone


def finetune_backbone(ckpt, config='vit-base-p16-rpe_8xb128-coslr-100e_in1k.py'):
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'finetune', config))
    cfg.model.backbone.update(arch=TINY_ARCH, init_cfg=dict(type='Pretrained', checkpoint=ckpt, prefix='backbone.'))
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    return model.backbone


def first_block_logits(backbone, tokens, hw):
    layer = backbone.layers[0]
    return layer.attn.logits(layer.ln1(tokens), AttentionContext(hw))


@pytest.fixture(scope='module')
def strong_rpe_ckpt(ckpts, tmp_path_factory):
    """The iRPE checkpoint with tables as strong as long-trained ones (2 warmup iterations barely move them
    from their zero init), so that a lookup or formula change shows in the logits."""
    ckpt = torch.load(ckpts['rpe'], map_location='cpu', weights_only=True)
    gen = torch.Generator().manual_seed(0)
    for key, value in ckpt['state_dict'].items():
        if key.endswith('rpe.lookup_table'):
            value.add_(torch.randn(value.shape, generator=gen))
    path = tmp_path_factory.mktemp('strong') / 'iter_2.pth'
    torch.save(ckpt, path)
    return str(path)


def test_first_block_logits_are_unchanged_by_the_transfer(strong_rpe_ckpt):
    pre = pretraining_encoder(strong_rpe_ckpt)
    ft = finetune_backbone(strong_rpe_ckpt)
    assert pre.layers[0].attn.rpe.index_mode == ft.layers[0].attn.rpe.index_mode == 'relaxed'
    tokens = torch.randn(2, 1 + 49, TINY_ARCH['embed_dims'], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = first_block_logits(pre, tokens, (7, 7))
        after = first_block_logits(ft, tokens, (7, 7))
        # the same tables read with the integer lookup give other logits: the comparison sees the lookup
        ft.layers[0].attn.rpe.index_mode = 'integer'
        integer = first_block_logits(ft, tokens, (7, 7))
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    assert (integer - before).abs().max() > 1e-2


def test_fine_tune_grid_uses_the_same_bucket_geometry(strong_rpe_ckpt):
    """On the 14x14 fine-tuning grid, a pair at a given offset gets the bias of that offset on the 7x7 grid."""
    pre = pretraining_encoder(strong_rpe_ckpt)
    ft = finetune_backbone(strong_rpe_ckpt)
    q = torch.randn(1, TINY_ARCH['num_heads'], 1, TINY_ARCH['embed_dims'] // TINY_ARCH['num_heads'])
    with torch.no_grad():
        small = pre.layers[0].attn.rpe(q.expand(-1, -1, 50, -1), (7, 7))  # [1, H, 50, 50]
        large = ft.layers[0].attn.rpe(q.expand(-1, -1, 197, -1), (14, 14))
    # query (row 3, col 3) -> key (row 1, col 5) on both grids (+1 for the cls token)
    i7, j7 = 1 + 3 * 7 + 3, 1 + 1 * 7 + 5
    i14, j14 = 1 + 3 * 14 + 3, 1 + 1 * 14 + 5
    torch.testing.assert_close(large[0, :, i14, j14], small[0, :, i7, j7])


def test_detection_backbone_keeps_the_pretraining_attention_on_patch_tokens(strong_rpe_ckpt):
    """The ViTDet backbone has no cls token: its logits are the pretraining ones between patch tokens."""
    pytest.importorskip('adpe_mm.det')
    from adpe_mm.models.backbones.plain_vit import PlainViT
    pre = pretraining_encoder(strong_rpe_ckpt)
    det = PlainViT(arch=TINY_ARCH, img_size=112, window_size=7, global_indices=(3, ), out_indices=(3, ),
                   rpe=dict(ratio=1.9, index_mode='relaxed'),
                   init_cfg=dict(type='Pretrained', checkpoint=strong_rpe_ckpt))
    det.init_weights()
    det.eval()
    tokens = torch.randn(2, 1 + 49, TINY_ARCH['embed_dims'], generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        before = first_block_logits(pre, tokens, (7, 7))[..., 1:, 1:]
        after = first_block_logits(det, tokens[:, 1:], (7, 7))
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
