# Appendix A schedule, shared by MAE, MAE+ and AdPE: 4096 images per step (8 GPUs x 128 x 4 accumulation
# steps), AdamW (0.9, 0.95), lr 1.5e-4 x 4096 / 256, wd 0.05 except norms, biases, tokens and positional
# embeddings (APE and iRPE tables), 20 warmup epochs then cosine (40 for 1600 epochs), AMP, no clipping.
# Also the pretraining runtime (it inherits default_runtime.py and sets resume, checkpoints, seed).
# The lr is written out for 4096 and stays so whatever the batch. On fewer GPUs pass tools/train.py
# --auto-scale-lr: it scales by (GPUs x 128 x accumulative_counts) / 4096 (mmengine alone ignores accumulation).
_base_ = '../default_runtime.py'

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    accumulative_counts=4,
    optimizer=dict(type='AdamW', lr=1.5e-4 * 4096 / 256, betas=(0.9, 0.95), weight_decay=0.05),
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
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=20, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=380, by_epoch=True, begin=20, end=400,
         convert_to_iter_based=True),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=400)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
resume = True
auto_scale_lr = dict(base_batch_size=4096, enable=False)
