# FGSM baseline of Table A.1: MAE+ (ViT-B, 4 crops of 112 px, 400 epochs) trained on crops moved by
# eps * sign(input gradient of the MAE+ loss), l_inf eps = 0.01 in normalised pixel units (see MAEPlusFGSM).
_base_ = '../mae_plus/maeplus_vit-base-p16_4x112-8xb128-accum4-amp-coslr-400e_in1k.py'
model = dict(type='MAEPlusFGSM', eps=0.01)
