# The FGSM baseline on the CPU-sized MAE+ and the embedded photographs (a demo and the tests' model).
# Every iteration costs one extra forward/backward (the input gradient); adv_gap is logged.
_base_ = '../mae_plus/maeplus_vit-tiny-p16_4x112-1xb8-300iter_embedded.py'
model = dict(type='MAEPlusFGSM', eps=0.01)
