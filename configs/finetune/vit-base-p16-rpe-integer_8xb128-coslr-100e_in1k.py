# ImageNet fine-tuning of an iRPE encoder pretrained with the integer iRPE lookup (the MAE+ iRPE baseline
# and AdPE with RPE embedding adversaries).
_base_ = './vit-base-p16_8xb128-coslr-100e_in1k.py'
rpe = dict(ratio=1.9, index_mode='integer')
model = dict(backbone=dict(rpe=rpe))
