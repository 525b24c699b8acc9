# Semantic FPN, MobileViGv2-Ti, ADE20K 512x512, 8x4 images, 40k iterations.
_base_ = './_base_/semfpn_mvig2.py'
model = dict(
    backbone=dict(
        arch='ti',
        init_cfg=dict(checkpoint='checkpoints/mobilevigv2_ti_in1k.pth')),
    neck=dict(in_channels=[32, 64, 128, 256]))
