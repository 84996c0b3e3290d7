_base_ = './adpe-rpe_vit-base-p16_4x112-400e.py'
# The recalibrated grid (configs/adpe/recalibrated/) trains against FRESH adversaries: every iteration two
# projected ascent steps of half the ball from zero on the batch, weights frozen, best iterate kept; then the
# weights' step at it (docs/adversarial_training.md, "Fresh and per-sample adversaries"). About 2.5x the step
# time of the parallel mode. For the paper's parallel mode with these budgets:
#   --cfg-options model.adversary_fresh=None model.adversary_steps=0
model = dict(log_adv_gap=True, adversary_steps=2, adversary_step_size=0.5, adversary_fresh='zero')
