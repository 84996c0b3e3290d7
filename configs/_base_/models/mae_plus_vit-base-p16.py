# MAE+ with ViT-B/16: 112 px crops -> 7x7 tokens, 75% masked, all 50 tokens encoded, 512-d 8-block decoder.
model = dict(
    type='MAEPlus',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(type='MAEPlusViT', arch='b', img_size=112, patch_size=16, mask_ratio=0.75),
    neck=dict(
        type='MAEPlusDecoder',
        num_patches=49,
        patch_size=16,
        in_chans=3,
        embed_dim=768,
        decoder_embed_dim=512,
        decoder_depth=8,
        decoder_num_heads=16,
        mlp_ratio=4.),
    head=dict(
        type='MAEPretrainHead',
        norm_pix=True,
        patch_size=16,
        loss=dict(type='PixelReconstructionLoss', criterion='L2')))
