# COCO Mask R-CNN with a pretrained APE encoder (MAE+, AdPE with APE adversaries), ViTDet recipe
# (8 GPUs x 8 images, LSJ 1024, 100 epochs, lr x 0.5). Set the encoder with
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
# and add --amp on GPUs (ViTDet trains in mixed precision).
_base_ = [
    '../_base_/models/det_mask-rcnn_plain-vit-b-p16_simple-fpn.py',
    '../_base_/datasets/det_coco-instance_lsj-1024.py',
    '../_base_/schedules/det_adamw-ld0.7_lsj-100e.py',
    '../_base_/det_default_runtime.py',
]
