# Runtime of the adpe_mm detection configs: the shared runtime with mmdet as the default scope, adpe_mm.det
# imported (PlainViT, SimpleFPN, LN2d, ViTLayerDecayOptimWrapperConstructor in mmdet's registries) and
# mmdet's visualizer; iteration-based logging.
_base_ = './default_runtime.py'
default_scope = 'mmdet'
custom_imports = dict(imports=['adpe_mm', 'adpe_mm.det'], allow_failed_imports=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=10000, max_keep_ckpts=3),
    visualization=dict(_delete_=True, type='DetVisualizationHook'))
visualizer = dict(_delete_=True, type='DetLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                  name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
