_base_ = '../_base_/adpe_vit-tiny-p16_4x112-300iter_embedded.py'
model = dict(adversary=dict(pe='ape', mode='embed', norm='l2', eps=3.0))
