# Recalibrated per-bucket RPE-embed budget (docs/method_notes.md, "Recalibrated budgets"): l2 eps 10 over each
# block's whole [head_dims, 50] adversary table, the probe's loss gain on a freshly pretrained MAE+ iRPE model
# being about 5% of its clean loss (the paper's l_inf 20 per entry: 21%).
_base_ = '../_base_/adpe-rpe-fresh_vit-base-p16_4x112-400e.py'
model = dict(adversary=dict(pe='rpe', mode='embed', norm='l2', eps=10.0))
