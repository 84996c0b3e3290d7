_base_ = [
    '../_base_/models/mae_plus_vit-base-p16.py',
    '../_base_/datasets/imagenet_mae_plus.py',
    '../_base_/schedules/mim_adamw-4096_coslr-1600e.py',
]
# k = 2 crops of 112 px per image (Fig. 1).
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='MultiCrop', num_crops=2, crop_size=112, scale=(0.08, 1.0), interpolation='bicubic'),
    dict(type='PackInputs'),
]))
