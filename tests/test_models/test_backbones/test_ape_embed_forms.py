"""The two forms of the APE embedding adversary: on top of the mask token (ours) or in its place (authors')."""
import pytest
import torch

from _tiny import tiny_mae_plus


def first_block_input(model, crops, mask):
    seen = {}
    handle = model.backbone.layers[0].register_forward_pre_hook(lambda m, args: seen.setdefault('x', args[0]))
    model.backbone(crops, patch_mask=mask)
    handle.remove()
    return seen['x'][:, 1:]  # [B, N, D] patch tokens


@pytest.mark.parametrize('form', ['add', 'replace'])
def test_masked_tokens_are_the_adversary_plus_the_position_with_or_without_the_mask_token(form):
    torch.manual_seed(0)
    model = tiny_mae_plus(dict(pe='ape', mode='embed', norm='l2', eps=3., form=form))
    backbone = model.backbone
    with torch.no_grad():
        backbone.adv_embed.normal_()
    crops = torch.randn(2, 3, 112, 112)
    mask = backbone.random_masking(2, crops.device, torch.Generator().manual_seed(0))
    x = first_block_input(model, crops, mask)
    pos = backbone.pos_embed[0, 1:]  # [N, D]
    content = backbone.adv_embed if form == 'replace' else backbone.mask_token[0, 0] + backbone.adv_embed
    expected = (pos + content).expand(2, -1, -1)
    torch.testing.assert_close(x[mask], expected[mask])
    visible = backbone.patch_embed(crops)[0] + pos
    torch.testing.assert_close(x[~mask], visible[~mask])
    assert (backbone.mask_token is None) == (form == 'replace')
    assert ('backbone.mask_token' in model.state_dict()) == (form == 'add')


def test_the_form_is_for_the_ape_embedding_adversary_only():
    with pytest.raises(ValueError, match="form='replace' applies to pe='ape', mode='embed' only"):
        tiny_mae_plus(dict(pe='ape', mode='coord', norm='l2', eps=3., form='replace'))
    with pytest.raises(ValueError, match='form must be one of'):
        tiny_mae_plus(dict(pe='ape', mode='embed', norm='l2', eps=3., form='swap'))
