# The sequential mode of the paper's footnote 1 on the best Table A.2 setting: every iteration first takes one
# PGD ascent step on the adversaries with the weights frozen (an extra forward and backward), then trains the
# weights against the updated adversaries. The optimizer leaves the adversaries alone (lr_mult=0); they are
# still projected after every step. The paper found no difference to the (cheaper) parallel mode.
_base_ = './table_a2/adpe-rpe-coord-linf-eps20_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py'
model = dict(adversary_steps=1, adversary_step_size=0.5)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'adv_': dict(lr_mult=0.)}))
