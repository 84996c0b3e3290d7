# Linear probing of an iRPE encoder pretrained with the relaxed lookup (AdPE with RPE coordinate
# adversaries). Use index_mode='integer' for integer-lookup encoders (MAE+ iRPE, RPE embedding adversaries).
_base_ = './vit-base-p16_8xb2048-linear-coslr-90e_in1k.py'
rpe = dict(ratio=1.9, index_mode='relaxed')
model = dict(backbone=dict(rpe=rpe))
