# GreedyViG-B on ImageNet-1k (paper: 83.9% top-1), the reference recipe, which
# GreedyViG shares with MobileViGv2 (see the base).
_base_ = ['./_base_/mvig2_in1k.py']

model = dict(
    backbone=dict(type='GreedyViG', arch='b'),
    head=dict(in_channels=512, emb_dims=768))
