# GreedyViG-M on ImageNet-1k (the reference repository names no top-1 for
# M), the reference recipe, which GreedyViG shares with MobileViGv2 (see the
# base).
_base_ = ['./_base_/mvig2_in1k.py']

model = dict(
    backbone=dict(type='GreedyViG', arch='m'),
    head=dict(in_channels=448, emb_dims=768))
