# MobileViGv2-M on ImageNet-1k (paper: 81.7% top-1), the reference recipe:
# 16 GPUs x 128 images, 300 epochs, distilled from a teacher (see the base).
_base_ = ['./_base_/mvig2_in1k.py']

model = dict(
    backbone=dict(arch='m'),
    head=dict(in_channels=384, emb_dims=512))
