_base_ = '../../mae_plus/maeplus_vit-tiny-p16_4x112-1xb8-300iter_embedded.py'
# What AdPE adds to an MAE+ config: the adversarial optimizer wrapper, the adversaries' own ascent group
# (maximize=True, no weight decay, the weights' lr schedule) and adversary logging. The adversary itself is
# `model.adversary`, set by the configs that inherit this file.
#
# The tiny configs use FRESH adversaries (beyond the paper; docs/adversarial_training.md, "Fresh and
# per-sample adversaries"): every iteration the adversary restarts at zero and takes two projected ascent
# steps of half its ball on the batch with the weights frozen (the best of zero and the two iterates is kept),
# and the weights train at it: about 2.5x the step time of MAE+. A persistent adversary co-adapts with the weights until it helps them (adv_gap
# <= 0); a fresh one cannot, and the logged adv_gap (> 0 when the attack found anything) shows it at work.
# The attack's size is logged as adv_attack_norm (adv_norm, the persistent parameter, stays 0).
# The paper's parallel mode: --cfg-options model.adversary_fresh=None model.adversary_steps=0; the wrapper
# below then steps the adversary in units of its ball (cross it in 10 steps at the peak lr, following the
# weights' warmup + cosine) instead of the paper's rule (adversary lr = weight lr, which moves it about
# lr = 1e-3 per step and leaves it at 0.3% of eps 3 after these 300 iterations).
model = dict(log_adv_gap=True, adversary_steps=2, adversary_step_size=0.5, adversary_fresh='zero')
optim_wrapper = dict(
    type='AdvOptimWrapper',
    adv_update='ascent',
    adv_grad_transform='ball',
    adv_ball_steps=10,
    paramwise_cfg=dict(custom_keys={'adv_': dict(decay_mult=0., maximize=True, lr_mult=1.0)}))
custom_hooks = [dict(type='ReconstructionHook', interval=100, num_images=4), dict(type='AdversaryHook')]
