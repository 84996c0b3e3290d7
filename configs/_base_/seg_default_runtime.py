# Runtime of the adpe_mm segmentation configs: the shared runtime with mmseg as the default scope,
# adpe_mm.seg imported (PlainViT and ViTLayerDecayOptimWrapperConstructor in mmseg's registries) and mmseg's
# visualizer; iteration-based logging.
_base_ = './default_runtime.py'
default_scope = 'mmseg'
custom_imports = dict(imports=['adpe_mm', 'adpe_mm.seg'], allow_failed_imports=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=16000, max_keep_ckpts=3),
    visualization=dict(_delete_=True, type='SegVisualizationHook'))
visualizer = dict(_delete_=True, type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                  name='visualizer')
log_processor = dict(by_epoch=False)
tta_model = dict(type='SegTTAModel')
