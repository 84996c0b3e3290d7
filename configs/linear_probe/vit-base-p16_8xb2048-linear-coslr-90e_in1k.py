# Linear probing (MAE protocol) of an APE encoder. Set the pretrained encoder with
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = [
    '../_base_/models/linear-probe_vit-base-p16_cls.py',
    '../_base_/datasets/imagenet_linear-probe-224.py',
    '../_base_/schedules/linear-probe_lars-16384-coslr-90e.py',
    '../_base_/default_runtime.py',
]
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3),
    logger=dict(type='LoggerHook', interval=10))
randomness = dict(seed=0, diff_rank_seed=True)
