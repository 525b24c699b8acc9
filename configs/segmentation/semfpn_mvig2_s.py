# Semantic FPN, MobileViGv2-S, ADE20K 512x512, 8x4 images, 40k iterations.
_base_ = './_base_/semfpn_mvig2.py'
model = dict(
    backbone=dict(
        arch='s',
        init_cfg=dict(checkpoint='checkpoints/mobilevigv2_s_in1k.pth')),
    neck=dict(in_channels=[32, 64, 128, 256]))
