_base_ = '../../mae_plus/maeplus_vit-tiny-p16_4x112-1xb8-300iter_embedded.py'
# What AdPE adds to an MAE+ config: the adversarial optimizer wrapper, the adversaries' own ascent group
# (maximize=True, no weight decay, the weights' lr schedule) and adversary logging. The adversary itself is
# `model.adversary`, set by the configs that inherit this file.
# The step is in units of the adversary's own ball (not the paper's adversary lr = weight lr, which moves it
# about lr = 1e-3 per step and leaves it at 0.3% of eps 3 after these 300 iterations): projected ascent along
# the steepest direction of its ball (sign for l_inf, g / ||g|| for l2), crossing it in 10 steps at the peak
# lr and following the weights' warmup + cosine. It then sits on its ball, but the weights co-adapt to a
# persistent adversary, so the logged adv_gap stays around 0 (docs/method_notes.md, "Step size").
optim_wrapper = dict(
    type='AdvOptimWrapper',
    adv_update='ascent',
    adv_grad_transform='ball',
    adv_ball_steps=10,
    paramwise_cfg=dict(custom_keys={'adv_': dict(decay_mult=0., maximize=True, lr_mult=1.0)}))
custom_hooks = [dict(type='ReconstructionHook', interval=100, num_images=4), dict(type='AdversaryHook')]
model = dict(log_adv_gap=True)
