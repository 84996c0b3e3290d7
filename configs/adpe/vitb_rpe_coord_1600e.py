# AdPE, the paper's best setting (Table 1): ViT-B/16, MAE+ with 4 crops of 112 px, iRPE in every encoder and
# decoder block read by the relaxed (bilinear) lookup, and a coordinate-mode adversary per block in an
# l_inf ball of 20 patches, 1600 epochs at 4096 images per step. Run with
#   tools/dist_train.sh configs/adpe/vitb_rpe_coord_1600e.py 8
_base_ = '../mae_plus/maeplus_vit-base-p16_4x112-8xb128-accum4-amp-coslr-1600e_in1k.py'
rpe = dict(ratio=1.9, index_mode='relaxed')
model = dict(
    adversary=dict(pe='rpe', mode='coord', norm='linf', eps=20.0),
    backbone=dict(rpe=rpe),
    neck=dict(rpe=rpe))
optim_wrapper = dict(
    type='AmpAdvOptimWrapper',
    paramwise_cfg=dict(custom_keys={'adv_': dict(decay_mult=0., maximize=True, lr_mult=1.0)}))
custom_hooks = [dict(type='AdversaryHook')]
