# GreedyViG-S on ImageNet-1k (paper: 81.1% top-1), the reference recipe, which
# GreedyViG shares with MobileViGv2 (see the base).
_base_ = ['./_base_/mvig2_in1k.py']

model = dict(
    backbone=dict(type='GreedyViG', arch='s'),
    head=dict(in_channels=384, emb_dims=768))
