# UperNet on a pretrained MAE+/AdPE ViT-B/16 (the MAE/BEiT ADE20K protocol): global attention in every
# block at 512 px (32x32 tokens), features of blocks 4, 6, 8, 12 turned into strides 4, 8, 16, 32 by
# mmseg's Feature2Pyramid, UPerHead + an auxiliary FCN head on the stride-16 level.
# The encoder comes from model.backbone.init_cfg.checkpoint (pretraining or converted backbone checkpoint).
norm_cfg = dict(type='SyncBN', requires_grad=True)
seg_crop_size = (512, 512)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=seg_crop_size),
    backbone=dict(
        type='PlainViT',
        arch='b',
        img_size=seg_crop_size,
        patch_size=16,
        window_size=0,
        out_indices=(3, 5, 7, 11),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(type='Feature2Pyramid', embed_dim=768, rescales=[4, 2, 1, 0.5], norm_cfg=norm_cfg),
    decode_head=dict(
        type='UPerHead',
        in_channels=[768, 768, 768, 768],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=768,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=768,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=seg_crop_size, stride=(341, 341)))
