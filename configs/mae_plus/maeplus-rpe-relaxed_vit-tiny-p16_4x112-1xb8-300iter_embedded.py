# The tiny main job with iRPE read by the relaxed (bilinear) lookup in every block: the MAE+ baseline of the
# tiny RPE-coord AdPE config, whose adversary needs that lookup. At delta = 0 the relaxed and the integer
# lookups agree only where the relaxed index is an integer (361 of 2401 pairs on 7x7), so RPE-coord results
# are compared with a baseline of the same lookup (docs/method_notes.md, "Which baseline").
_base_ = './maeplus_vit-tiny-p16_4x112-1xb8-300iter_embedded.py'
rpe = dict(ratio=1.9, index_mode='relaxed')
model = dict(backbone=dict(rpe=rpe), neck=dict(rpe=rpe))
