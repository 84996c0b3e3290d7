_base_ = [
    '../_base_/models/mae_plus_vit-large-p16.py',
    '../_base_/datasets/imagenet_mae_plus.py',
    '../_base_/schedules/mim_adamw-4096_coslr-400e.py',
]
