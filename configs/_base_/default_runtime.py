# Runtime defaults shared by the adpe_mm configs (mmpretrain style). Detection and segmentation configs
# inherit it too and override `default_scope`, `default_hooks.visualization` and `visualizer` with their
# library's own types.
default_scope = 'mmpretrain'

# Registers adpe_mm's components (and its torch.load allow-list for mmengine checkpoints) in every process
# that builds from this config, including the ones started by tools/dist_train.sh.
custom_imports = dict(imports=['adpe_mm'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # mmengine's CheckpointHook, but a checkpoint is complete whenever it has its name and old ones are
    # deleted only after the new one is on disk (adpe_mm/engine/hooks/atomic_checkpoint_hook.py).
    checkpoint=dict(type='AtomicCheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # A NaN/inf loss or weight stops the run (non-zero exit) before any checkpoint of it is written; it runs
    # before the checkpoint hook. action='skip' goes on while the weights stay finite (AMP's skipped steps).
    # See adpe_mm/engine/hooks/finite_loss_hook.py.
    finite_loss=dict(type='FiniteLossHook', action='stop', check_weights=True),
    visualization=dict(type='VisualizationHook', enable=False),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches this to 'gloo' when a distributed launcher is used without CUDA.
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_processor = dict(window_size=10)
log_level = 'INFO'

load_from = None
resume = False

randomness = dict(seed=None, deterministic=False)
