# Linear-probing schedule of MAE: LARS (momentum 0.9, no weight decay), lr 0.1 x 16384 / 256 = 6.4 at
# batch 16384, 10 warmup epochs then cosine to 0, 90 epochs.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='LARS', lr=6.4, weight_decay=0.0, momentum=0.9))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=80, by_epoch=True, begin=10, end=90, eta_min=0.0,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=90, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# lr 6.4 is for a total batch of 16384; tools/train.py --auto-scale-lr rescales it to yours.
auto_scale_lr = dict(base_batch_size=16384)
