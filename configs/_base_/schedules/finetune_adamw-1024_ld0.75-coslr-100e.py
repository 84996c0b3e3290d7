# Fine-tuning schedule of appendix A: AdamW (0.9, 0.999), lr 4e-3 at batch 1024, weight decay 0.05 (none on
# norms, biases, cls token, APE and iRPE tables), layer-wise lr decay 0.75, 5 warmup epochs then cosine to
# 1e-6, 100 epochs.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-3, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='LearningRateDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.75,
        custom_keys={
            '.ln': dict(decay_mult=0.0),
            '.bias': dict(decay_mult=0.0),
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0),
            '.lookup_table': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=95, by_epoch=True, begin=5, end=100, eta_min=1e-6,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# lr 4e-3 is for a total batch of 1024 (8 GPUs x 128); tools/train.py --auto-scale-lr rescales it.
auto_scale_lr = dict(base_batch_size=1024)
