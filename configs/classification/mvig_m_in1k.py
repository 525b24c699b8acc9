# MobileViG-M (v1) on ImageNet-1k (paper: 80.6% top-1), the reference
# recipe, which MobileViG shares with MobileViGv2 (see the base).
_base_ = ['./_base_/mvig2_in1k.py']

model = dict(
    backbone=dict(type='MobileViG', arch='m'),
    head=dict(in_channels=400, emb_dims=768))
