# MobileViGv2-B on ImageNet-1k (paper: 83.4% top-1), the reference recipe:
# 16 GPUs x 128 images, 300 epochs, distilled from a teacher (see the base).
_base_ = ['./_base_/mvig2_in1k.py']

model = dict(
    backbone=dict(arch='b'),
    head=dict(in_channels=512, emb_dims=768))
