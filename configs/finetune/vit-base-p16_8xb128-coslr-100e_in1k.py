# ImageNet fine-tuning (appendix A) of an APE encoder (MAE+, AdPE with APE adversaries): IRPEViT-B/16 without
# iRPE. Set the pretrained encoder with
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = [
    '../_base_/models/finetune_vit-base-p16_gap.py',
    '../_base_/datasets/imagenet_finetune-224.py',
    '../_base_/schedules/finetune_adamw-1024_ld0.75-coslr-100e.py',
    '../_base_/default_runtime.py',
]
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
