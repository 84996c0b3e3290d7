# ADE20K UperNet with a pretrained APE encoder (MAE+, AdPE with APE adversaries): 8 GPUs x 2 images,
# 512x512, 160k iterations, AdamW lr 2e-4, layer decay 0.65. Set the encoder with
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = [
    '../_base_/models/seg_upernet_plain-vit-b-p16.py',
    '../_base_/datasets/seg_ade20k-512x512.py',
    '../_base_/schedules/seg_adamw-ld0.65_160k.py',
    '../_base_/seg_default_runtime.py',
]
