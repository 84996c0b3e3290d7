# A pretrained MAE+/AdPE encoder as an ImageNet classifier (appendix A): IRPEViT-B/16 at 224 px, the 7x7
# pretraining APE resized bicubically to 14x14 and learnable, global average pooling + a new LN (the final
# LN of pretraining is not used), drop path 0.1, a linear head, label smoothing 0.1, mixup 0.8 / cutmix 1.0.
# The encoder comes from model.backbone.init_cfg.checkpoint (a pretraining checkpoint or a converted
# backbone, see tools/model_converters/).
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='IRPEViT',
        arch='b',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        out_type='avg_featmap',
        final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))
