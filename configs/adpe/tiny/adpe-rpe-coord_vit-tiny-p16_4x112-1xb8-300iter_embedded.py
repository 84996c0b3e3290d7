_base_ = '../_base_/adpe_vit-tiny-p16_4x112-300iter_embedded.py'
rpe = dict(ratio=1.9, index_mode='relaxed')
model = dict(
    adversary=dict(pe='rpe', mode='coord', norm='linf', eps=20.0),
    backbone=dict(rpe=rpe),
    neck=dict(rpe=rpe))
