# Semantic FPN, MobileViG-B (v1), ADE20K 512x512, 8x4 images, 40k
# iterations: MobileViGv2's recipe with its predecessor (MobileViG published
# no segmentation results).
_base_ = './_base_/semfpn_mvig2.py'
model = dict(
    backbone=dict(
        type='MobileViG',
        arch='b',
        init_cfg=dict(checkpoint='checkpoints/mobilevig_b_in1k.pth')),
    neck=dict(in_channels=[42, 84, 240, 464]))
