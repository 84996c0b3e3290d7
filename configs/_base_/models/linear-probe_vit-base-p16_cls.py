# Linear probing of a pretrained encoder (MAE protocol): the whole IRPEViT-B/16 frozen (patch embedding,
# APE, every block and the final LN), the cls token after the final LN, a BatchNorm without affine
# parameters, then a linear head.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='IRPEViT',
        arch='b',
        img_size=224,
        patch_size=16,
        frozen_stages=12,
        out_type='cls_token',
        final_norm=True,
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(type='ClsBatchNormNeck', input_features=768),
    head=dict(
        type='VisionTransformerClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='CrossEntropyLoss'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)]))
