_base_ = '../_base_/adpe-ape_vit-base-p16_4x112-400e.py'
model = dict(adversary=dict(pe='ape', mode='embed', norm='linf', eps=3.0))
