# The iRPE MAE+ baseline of Table A.3: iRPE (ratio 1.9, integer lookup) in every encoder and decoder block,
# on top of the fixed sin-cos APE.
_base_ = './maeplus_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py'
rpe = dict(ratio=1.9, index_mode='integer')
model = dict(backbone=dict(rpe=rpe), neck=dict(rpe=rpe))
