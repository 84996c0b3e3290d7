# ImageNet fine-tuning (appendix A) of an iRPE encoder pretrained with the relaxed iRPE lookup (AdPE with
# RPE coordinate adversaries, the paper's best): every block keeps its pretrained iRPE table, with the same
# formula and lookup as in pretraining (the checkpoint records the lookup; another one is refused at load).
_base_ = './vit-base-p16_8xb128-coslr-100e_in1k.py'
rpe = dict(ratio=1.9, index_mode='relaxed')
model = dict(backbone=dict(rpe=rpe))
