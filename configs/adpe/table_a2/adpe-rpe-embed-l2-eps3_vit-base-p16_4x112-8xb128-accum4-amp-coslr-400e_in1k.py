_base_ = '../_base_/adpe-rpe_vit-base-p16_4x112-400e.py'
model = dict(adversary=dict(pe='rpe', mode='embed', norm='l2', eps=3.0))
