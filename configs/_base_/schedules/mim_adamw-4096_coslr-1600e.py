# The appendix-A schedule for 1600 epochs: as the 400-epoch file, with 40 warmup epochs.
_base_ = './mim_adamw-4096_coslr-400e.py'

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=40, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=1560, by_epoch=True, begin=40, end=1600, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1600)
