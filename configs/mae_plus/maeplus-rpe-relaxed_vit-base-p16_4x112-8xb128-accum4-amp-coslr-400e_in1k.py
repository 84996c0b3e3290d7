# The iRPE MAE+ baseline with the relaxed (bilinear) lookup of the RPE-coord AdPE configs: compare RPE coord
# with this, not with the integer-lookup baseline of Table A.3, which reads other table entries at delta = 0
# for 2040 of the 2401 patch pairs of the 7x7 grid (docs/method_notes.md, "Which baseline").
_base_ = './maeplus-rpe_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py'
rpe = dict(ratio=1.9, index_mode='relaxed')
model = dict(backbone=dict(rpe=rpe), neck=dict(rpe=rpe))
