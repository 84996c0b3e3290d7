_base_ = '../../mae_plus/maeplus_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py'
# What AdPE adds to an MAE+ config: the adversarial optimizer wrapper, the adversaries' own ascent group
# (maximize=True, no weight decay, the weights' lr schedule) and adversary logging. The adversary itself is
# `model.adversary`, set by the configs that inherit this file.
optim_wrapper = dict(
    type='AmpAdvOptimWrapper',
    paramwise_cfg=dict(custom_keys={'adv_': dict(decay_mult=0., maximize=True, lr_mult=1.0)}))
custom_hooks = [dict(type='AdversaryHook')]
