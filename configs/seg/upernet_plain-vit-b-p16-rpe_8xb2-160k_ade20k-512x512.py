# ADE20K UperNet with a pretrained iRPE encoder (relaxed lookup: AdPE with RPE coordinate adversaries);
# every block keeps its pretrained table and lookup over the 32x32 grid (use index_mode='integer' for
# integer-lookup encoders).
_base_ = './upernet_plain-vit-b-p16_8xb2-160k_ade20k-512x512.py'
rpe = dict(ratio=1.9, index_mode='relaxed')
model = dict(backbone=dict(rpe=rpe))
