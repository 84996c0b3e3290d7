_base_ = './mae_plus_vit-base-p16.py'
# ViT-L/16 encoder; the decoder stays 512-d x 8 blocks as in MAE.
model = dict(backbone=dict(arch='l'), neck=dict(embed_dim=1024))
