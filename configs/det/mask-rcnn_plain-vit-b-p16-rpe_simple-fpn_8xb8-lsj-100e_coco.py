# COCO Mask R-CNN with a pretrained iRPE encoder (relaxed lookup: AdPE with RPE coordinate adversaries).
# Windowed blocks read the pretrained tables over offsets inside each window, global blocks over the whole
# 64x64 grid; the lookup is the pretraining one (use index_mode='integer' for integer-lookup encoders).
_base_ = './mask-rcnn_plain-vit-b-p16_simple-fpn_8xb8-lsj-100e_coco.py'
rpe = dict(ratio=1.9, index_mode='relaxed')
model = dict(backbone=dict(rpe=rpe))
