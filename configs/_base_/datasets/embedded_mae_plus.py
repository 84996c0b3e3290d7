# MAE+ multi-crop input on the embedded real photographs (data/embedded, built by tools/install.sh).
_base_ = './embedded_pretrain.py'

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiCrop', num_crops=4, crop_size=112, scale=(0.08, 1.0), interpolation='bicubic'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=8,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(pipeline=train_pipeline))
