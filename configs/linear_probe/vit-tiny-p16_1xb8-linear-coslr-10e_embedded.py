# Linear probing of the README's main job (configs/mae_plus/maeplus_vit-tiny-p16_4x112-1xb8-300iter_embedded.py,
# written to work_dirs/maeplus_tiny) on the embedded photos: the MAE protocol of
# vit-base-p16_8xb2048-linear-coslr-90e_in1k.py (frozen encoder, cls token, BN neck, LARS) at the main job's
# tiny width (all 4 blocks frozen), 22 classes, batch 8 on one CPU process, 10 epochs of 5 iterations.
# As for fine-tuning, data/embedded/meta/val.txt lists the training photos (no held-out images). Another
# encoder: --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = './vit-base-p16_8xb2048-linear-coslr-90e_in1k.py'
num_classes = 22
data_root = 'data/embedded'
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512),
        frozen_stages=4,
        init_cfg=dict(checkpoint='work_dirs/maeplus_tiny/iter_300.pth')),
    neck=dict(input_features=128),
    head=dict(num_classes=num_classes, in_channels=128))
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(type='CustomDataset', data_root=data_root, ann_file='meta/train.txt', data_prefix='train'))
val_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(type='CustomDataset', data_root=data_root, ann_file='meta/val.txt', data_prefix='train'))
test_dataloader = val_dataloader
# LARS lr 3.0: the best of 0.1 / 1.0 / 3.0 on these photos after 10 epochs (top-1 5.4 / 27.0 / 37.8%).
optim_wrapper = dict(optimizer=dict(lr=3.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=9, by_epoch=True, begin=1, end=10, eta_min=0.0,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=10, val_interval=5)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=5, max_keep_ckpts=1))
auto_scale_lr = dict(base_batch_size=8)
