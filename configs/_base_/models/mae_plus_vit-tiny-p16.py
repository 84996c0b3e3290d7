_base_ = './mae_plus_vit-base-p16.py'
# A CPU-sized MAE+ (embedded-data demos and tests): 128-d x 4-block encoder, 64-d x 2-block decoder.
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512)),
    neck=dict(embed_dim=128, decoder_embed_dim=64, decoder_depth=2, decoder_num_heads=4))
