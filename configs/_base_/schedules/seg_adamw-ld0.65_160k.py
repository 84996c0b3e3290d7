# ADE20K fine-tuning schedule of the paper: AdamW (0.9, 0.999) lr 2e-4 at batch 16, weight decay 0.05 (none
# on norms, biases, APE, iRPE tables), layer-wise lr decay 0.65 by backbone block depth, 1500 warmup
# iterations, then linear (poly 1.0) decay to 0 at 160k iterations.
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='ViTLayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        layer_decay_rate=0.65,
        norm_decay_mult=0.,
        bias_decay_mult=0.,
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'lookup_table': dict(decay_mult=0.),
        }))
max_iters = 160000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=16000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# The lr is for a total batch of 16 (8 GPUs x 2); tools/train.py --auto-scale-lr rescales it to yours.
auto_scale_lr = dict(base_batch_size=16)
