# Recalibrated RPE-coord budget (docs/method_notes.md, "Recalibrated budgets"): l_inf eps 5 patches with the
# corrected geometry (edge='fade', the default), inside the range where the probe's loss gain on a freshly
# pretrained MAE+ iRPE model still rises with eps (it is flat from 5 to 20 patches).
_base_ = '../_base_/adpe-rpe-fresh_vit-base-p16_4x112-400e.py'
rpe = dict(ratio=1.9, index_mode='relaxed')  # coordinate mode reads the table by bilinear interpolation
model = dict(
    adversary=dict(pe='rpe', mode='coord', norm='linf', eps=5.0, edge='fade'),
    backbone=dict(rpe=rpe),
    neck=dict(rpe=rpe))
