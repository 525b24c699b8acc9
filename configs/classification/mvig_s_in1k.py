# MobileViG-S (v1) on ImageNet-1k (paper: 78.2% top-1), the reference
# recipe, which MobileViG shares with MobileViGv2 (see the base).
_base_ = ['./_base_/mvig2_in1k.py']

model = dict(
    backbone=dict(type='MobileViG', arch='s'),
    head=dict(in_channels=256, emb_dims=512))
