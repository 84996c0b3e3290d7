# The embedded linear probe of vit-tiny-p16_1xb8-linear-coslr-10e_embedded.py for an iRPE encoder pretrained
# with the relaxed lookup: the tiny AdPE RPE-coordinate job,
#   .venv/bin/python tools/train.py configs/adpe/tiny/adpe-rpe-coord_vit-tiny-p16_4x112-1xb8-300iter_embedded.py \
#       --work-dir work_dirs/adpe_rpe_coord_tiny
_base_ = './vit-tiny-p16_1xb8-linear-coslr-10e_embedded.py'
model = dict(backbone=dict(rpe=dict(ratio=1.9, index_mode='relaxed'),
                           init_cfg=dict(checkpoint='work_dirs/adpe_rpe_coord_tiny/iter_300.pth')))
