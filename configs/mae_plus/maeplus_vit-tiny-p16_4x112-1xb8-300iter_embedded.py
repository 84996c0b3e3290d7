# The README's main job: MAE+ (4 crops of 112 px per image) with a CPU-sized ViT on the embedded real
# photographs. The loss falls within minutes on a 2-core CPU; reconstructions are written as PNGs to
# <work_dir>/reconstructions/ (original crop | masked input | reconstruction | reconstruction + visible).
_base_ = [
    '../_base_/models/mae_plus_vit-tiny-p16.py',
    '../_base_/datasets/embedded_mae_plus.py',
    '../_base_/default_runtime.py',
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
            'lookup_table': dict(decay_mult=0.),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', T_max=270, eta_min=1e-5, by_epoch=False, begin=30, end=300),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=300)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='AtomicCheckpointHook', interval=100, by_epoch=False, max_keep_ckpts=2))
custom_hooks = [dict(type='ReconstructionHook', interval=100, num_images=4)]
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
