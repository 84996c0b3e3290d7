# ImageNet-1k for linear probing (MAE protocol): RandomResizedCrop 224 + flip only; evaluation on the
# centre 224 crop of the 256-px short side. Layout: docs/transfer.md.
_base_ = './imagenet_finetune-224.py'

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=2048, drop_last=True, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=256)
test_dataloader = val_dataloader
