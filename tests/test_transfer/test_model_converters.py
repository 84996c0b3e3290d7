"""tools/model_converters: clean backbone checkpoints, timm ViT format for APE encoders, release names."""
import hashlib
import importlib.util
import os.path as osp
import re
import subprocess

import torch

from adpe_mm.models.backbones import IRPEViT
from adpe_mm.models.backbones.pretrained import load_pretrained_encoder
from conftest import REPO_ROOT, run_tool, tool_env
from transfer_helpers import PYTHON, TINY_ARCH
from transfer_helpers import ckpts  # noqa: F401  (session fixture: the tiny pretraining checkpoints)

CONVERTERS = osp.join(REPO_ROOT, 'tools', 'model_converters')


def convert(tmp_path, script, *args):
    return run_tool([PYTHON, osp.join(CONVERTERS, script), *map(str, args)], cwd=str(tmp_path))


def load_without_adpe_mm(path):
    """torch.load(weights_only=True) in a fresh interpreter that never imports adpe_mm (no allow-list)."""
    code = f'import torch; d = torch.load({str(path)!r}, weights_only=True); print(sorted(d)[:3])'
    proc = subprocess.run([PYTHON, '-c', code], env=tool_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def timm_vit_shapes(depth, dims, mlp, tokens, patch=16):
    """Parameter names and shapes of timm's VisionTransformer (vision_transformer.py) with a cls token,
    token pooling and num_classes=0, as published in timm's ViT checkpoints."""
    shapes = {'cls_token': (1, 1, dims), 'pos_embed': (1, tokens, dims),
              'patch_embed.proj.weight': (dims, 3, patch, patch), 'patch_embed.proj.bias': (dims, ),
              'norm.weight': (dims, ), 'norm.bias': (dims, )}
    for i in range(depth):
        b = f'blocks.{i}.'
        shapes.update({
            b + 'norm1.weight': (dims, ), b + 'norm1.bias': (dims, ),
            b + 'attn.qkv.weight': (3 * dims, dims), b + 'attn.qkv.bias': (3 * dims, ),
            b + 'attn.proj.weight': (dims, dims), b + 'attn.proj.bias': (dims, ),
            b + 'norm2.weight': (dims, ), b + 'norm2.bias': (dims, ),
            b + 'mlp.fc1.weight': (mlp, dims), b + 'mlp.fc1.bias': (mlp, ),
            b + 'mlp.fc2.weight': (dims, mlp), b + 'mlp.fc2.bias': (dims, )})
    return shapes


def test_backbone_checkpoint_is_plain_and_loads_exactly_like_the_pretraining_one(ckpts, tmp_path):
    out = tmp_path / 'rpe_backbone.pth'
    convert(tmp_path, 'pretrain_to_backbone.py', ckpts['rpe'], out)
    load_without_adpe_mm(out)
    clean = torch.load(out, weights_only=True)
    state = torch.load(ckpts['rpe'], map_location='cpu', weights_only=True)['state_dict']
    encoder = {k for k in state if k.startswith('backbone.') and 'adv_' not in k and 'mask_token' not in k}
    assert set(clean['state_dict']) == encoder
    assert clean['meta']['rpe'] == dict(index_mode='relaxed', ratio=1.9)
    assert all(type(v) is torch.Tensor for v in clean['state_dict'].values())

    a = IRPEViT(arch=TINY_ARCH, img_size=224, rpe=dict(ratio=1.9, index_mode='relaxed'))
    b = IRPEViT(arch=TINY_ARCH, img_size=224, rpe=dict(ratio=1.9, index_mode='relaxed'))
    report = load_pretrained_encoder(a, str(out))
    load_pretrained_encoder(b, ckpts['rpe'])
    assert report.missing == [] and report.dropped == {}
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


def test_timm_format_matches_timm_vit_names_and_shapes(ckpts, tmp_path):
    out = tmp_path / 'vit_timm.pth'
    convert(tmp_path, 'backbone_to_timm.py', ckpts['ape'], out, '--img-size', 224)
    load_without_adpe_mm(out)
    sd = torch.load(out, weights_only=True)
    dims, depth, mlp = TINY_ARCH['embed_dims'], TINY_ARCH['num_layers'], TINY_ARCH['feedforward_channels']
    assert {k: tuple(v.shape) for k, v in sd.items()} == timm_vit_shapes(depth, dims, mlp, 1 + 14 * 14)
    state = torch.load(ckpts['ape'], map_location='cpu', weights_only=True)['state_dict']
    assert torch.equal(sd['blocks.2.mlp.fc2.weight'], state['backbone.layers.2.ffn.layers.1.weight'])
    assert torch.equal(sd['norm.bias'], state['backbone.ln1.bias'])
    if importlib.util.find_spec('timm') is not None:  # the real thing, where timm is installed
        import timm
        model = timm.create_model('vit_base_patch16_224', pretrained=False, num_classes=0, embed_dim=dims,
                                  depth=depth, num_heads=TINY_ARCH['num_heads'], mlp_ratio=mlp / dims)
        model.load_state_dict(sd, strict=True)


def test_timm_conversion_refuses_irpe_encoders(ckpts, tmp_path):
    proc = subprocess.run([PYTHON, osp.join(CONVERTERS, 'backbone_to_timm.py'), ckpts['rpe'], str(tmp_path / 'x.pth')],
                          env=tool_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and 'no iRPE' in proc.stderr
    assert not (tmp_path / 'x.pth').exists()


def test_publish_names_the_file_by_date_and_content_hash(ckpts, tmp_path):
    proc = convert(tmp_path, 'publish_model.py', ckpts['ape'], tmp_path / 'release' / 'adpe-ape_vit-tiny',
                   '--date', '20260102')
    path = proc.stdout.strip().splitlines()[-1]
    name = osp.basename(path)
    assert re.fullmatch(r'adpe-ape_vit-tiny_20260102-[0-9a-f]{8}\.pth', name)
    with open(path, 'rb') as f:
        assert hashlib.sha256(f.read()).hexdigest()[:8] == name[-12:-4]
    load_without_adpe_mm(path)
    released = torch.load(path, weights_only=True)
    assert set(released) == {'state_dict', 'meta'}  # no optimizer, message hub, schedulers or config
    state = torch.load(ckpts['ape'], map_location='cpu', weights_only=True)['state_dict']
    assert released['state_dict'].keys() == state.keys()
