"""Over a few hundred training steps, a fresh adversary keeps acting; a persistent APE-embed one is cancelled.

The cancellations (docs/method_notes.md, "Cancellation"): masked tokens are ``mask_token + p + a``, so the
mask token and a persistent ``a`` always get the same gradient, and equal-lr AdamW descent on one with ascent
on the other leaves ``mask_token + a`` at its initial value: the masked tokens' input never changes. The
per-bucket RPE-embed adversary is cancelled the same way by the table learning ``W ~ -A``. A fresh adversary
restarts at zero every step, so no weight can mirror it.
"""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from _tiny import ADVERSARIES, tiny_mae_plus
from test_mae_plus import real_crops

STEPS = 200


def train(model, batches, steps=STEPS, lr=1e-3):
    """AdamW on the weights (no decay anywhere); a persistent adversary ascends with the same AdamW rule (the
    paper's parallel mode) and is projected after every step."""
    wrapper = build_optim_wrapper(model, dict(
        type='AdvOptimWrapper', optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.95), weight_decay=0.),
        paramwise_cfg=dict(custom_keys={'adv_': dict(decay_mult=0., maximize=True)})))
    model.log_adv_gap = True
    gaps, norms = [], []
    for i in range(steps):
        out = model.loss(batches[i % len(batches)], None)
        wrapper.update_params(out['loss'])
        gaps.append(float(out['adv_gap']))
        norms.append(float(out.get('adv_attack_norm', float('nan'))))
    return gaps, norms


@pytest.fixture(scope='module')
def batches(embedded_data):
    with DefaultScope.overwrite_default_scope('mmpretrain'):  # (module scope: before the autouse fixture)
        return [real_crops(embedded_data, num_images=2, num_crops=2, seed=s) for s in range(4)]


def test_a_persistent_ape_embed_adversary_is_cancelled_by_the_mask_token(batches):
    torch.manual_seed(0)
    model = tiny_mae_plus(ADVERSARIES['ape-embed'])
    start = model.backbone.mask_token.detach().clone()
    train(model, batches)
    a, token = model.backbone.adv_embed.detach(), model.backbone.mask_token.detach()
    assert a.norm() > 0.03  # the adversary moved ...
    # ... and the mask token moved by exactly minus it: the masked tokens' input is the initial one
    torch.testing.assert_close(token + a, start, atol=1e-5, rtol=0)


@pytest.mark.parametrize('mode', ['ape-embed', 'rpe-embed'])  # the two that a weight cancels when persistent
def test_a_fresh_adversary_still_raises_the_loss_after_training(mode, batches):
    torch.manual_seed(0)
    model = tiny_mae_plus(ADVERSARIES[mode], adversary_steps=2, adversary_step_size=0.5, adversary_fresh='zero')
    gaps, norms = train(model, batches)
    late = gaps[-50:]
    assert min(late) >= 0  # the start (zero) is among the candidates
    # the attack found a loss increase on most of the late steps, and on average a clear one
    assert sum(g > 0 for g in late) >= 0.8 * len(late), late
    assert sum(late) / len(late) > 1e-3, late
    # and what it adds to the masked tokens' input (APE: exactly the attack's value, no mask token mirrors it)
    # or to the masked rows' lookup (RPE: the attack's table) stays a sizeable part of its ball
    eps = ADVERSARIES[mode]['eps']
    late_norms = norms[-50:]
    assert all(n <= eps * (1 + 1e-5) for n in late_norms)
    assert sum(late_norms) / len(late_norms) > 0.5 * eps, late_norms
