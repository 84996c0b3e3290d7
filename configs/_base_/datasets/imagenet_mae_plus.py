# ImageNet-1k pretraining input of MAE+: k independent 112 px crops per image (see MultiCrop).
# 128 images per GPU; with k = 4 the model sees 512 crops per GPU per step.
dataset_type = 'ImageNet'
data_root = 'data/imagenet/'

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiCrop', num_crops=4, crop_size=112, scale=(0.08, 1.0), interpolation='bicubic'),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=128,
    num_workers=10,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline))
