# ViTDet's ViT-B schedule (100 epochs of COCO at batch 64 = 184375 iterations, steps at 88.9% and 96.3%,
# 250 warmup iterations) with AdamW (0.9, 0.999), weight decay 0.1 (none on norms, biases, APE, iRPE
# tables), layer-wise lr decay 0.7, and the paper's lr multiplier 0.5 on ViTDet's base lr 1e-4:
# lr = 0.5 x 1e-4 = 5e-5 at batch 64.
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='ViTLayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=0.5 * 1e-4, betas=(0.9, 0.999), weight_decay=0.1),
    paramwise_cfg=dict(
        layer_decay_rate=0.7,
        norm_decay_mult=0.,
        bias_decay_mult=0.,
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'lookup_table': dict(decay_mult=0.),
        }))
max_iters = 184375
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[163889, 177546], gamma=0.1),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters // 10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# The lr is for a total batch of 64 (8 GPUs x 8); tools/train.py --auto-scale-lr rescales it to yours.
auto_scale_lr = dict(base_batch_size=64)
