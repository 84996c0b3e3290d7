# The MAE baseline under exactly the MAE+ schedule: stock mmpretrain MAE components, one 224 px crop.
_base_ = [
    'mmpretrain::_base_/models/mae_vit-base-p16.py',
    '../_base_/datasets/imagenet_mae.py',
    '../_base_/schedules/mim_adamw-4096_coslr-400e.py',
]
model = dict(data_preprocessor=dict(
    type='SelfSupDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True))
