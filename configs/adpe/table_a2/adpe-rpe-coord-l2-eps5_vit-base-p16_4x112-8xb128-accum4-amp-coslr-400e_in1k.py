_base_ = '../_base_/adpe-rpe_vit-base-p16_4x112-400e.py'
rpe = dict(ratio=1.9, index_mode='relaxed')  # coordinate mode reads the table by bilinear interpolation
model = dict(
    adversary=dict(pe='rpe', mode='coord', norm='l2', eps=5.0),
    backbone=dict(rpe=rpe),
    neck=dict(rpe=rpe))
