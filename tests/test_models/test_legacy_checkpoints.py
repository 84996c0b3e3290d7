"""Checkpoints written before the package was reorganised (issue 14) still load and still compute the same.

The fixtures in ``tests/fixtures/legacy/`` were written by ``make_legacy_checkpoints.py`` at commit 89f515f,
before ``models/utils`` was dissolved and the ViT family got one core: three micro MAE+/AdPE models with iRPE
(no adversary, an RPE-coordinate adversary, an APE-embedding adversary) with non-zero tables and adversaries,
and the reconstruction each gave on fixed crops and masks.
"""
import importlib.util
import os.path as osp

import pytest
import torch

from adpe_mm.utils.checkpoint_file import load_checkpoint_file
from mmpretrain.registry import MODELS

HERE = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'fixtures', 'legacy')
NAMES = ('maeplus_rpe', 'adpe_rpe_coord', 'adpe_ape_embed')


def _fixture_script():
    """The script that wrote the fixtures: its micro model is the one they were written from."""
    path = osp.join(HERE, 'make_legacy_checkpoints.py')
    spec = importlib.util.spec_from_file_location('make_legacy_checkpoints', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LEGACY = _fixture_script()
MICRO = LEGACY.MICRO


@pytest.mark.parametrize('name', NAMES)
def test_legacy_pretraining_checkpoint_loads_strictly_and_reconstructs_the_same(name):
    ckpt = load_checkpoint_file(osp.join(HERE, f'{name}.pth'))
    expected = torch.load(osp.join(HERE, f'{name}_expected.pt'), weights_only=True)
    model = LEGACY.micro_model(ckpt['meta']['adversary'])
    result = model.load_state_dict(ckpt['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    model.eval()
    crops = torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(expected['crops_seed']))
    with torch.no_grad():
        pred, _ = model.reconstruct(crops, patch_mask=expected['mask'])
        loss = model.head.loss(pred, crops, expected['mask'].float())
    torch.testing.assert_close(pred[:, :4, :8], expected['pred_head'], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss, expected['loss'], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name', NAMES)
def test_legacy_encoder_loads_into_the_downstream_backbones(name):
    from adpe_mm.models.backbones.pretrained import load_pretrained_encoder
    from adpe_mm.models.pos_embed.irpe import decode_lookup
    path = osp.join(HERE, f'{name}.pth')
    ckpt = load_checkpoint_file(path)['state_dict']
    rpe = decode_lookup(ckpt['backbone.layers.0.attn.rpe._extra_state'])  # the lookup pretraining recorded
    classifier = MODELS.build(dict(type='IRPEViT', arch=MICRO, img_size=224, rpe=rpe))
    report = load_pretrained_encoder(classifier, path)
    assert not report.missing and report.rpe == rpe
    table = 'layers.1.attn.rpe.lookup_table'
    torch.testing.assert_close(classifier.state_dict()[table], ckpt['backbone.' + table])
    from adpe_mm.models.backbones.plain_vit import PlainViT
    dense = PlainViT(arch=MICRO, img_size=64, window_size=2, global_indices=(1, ), out_indices=(1, ),
                     rpe=rpe)
    report = load_pretrained_encoder(dense, path)
    assert not report.missing
    torch.testing.assert_close(dense.state_dict()[table], ckpt['backbone.' + table])
