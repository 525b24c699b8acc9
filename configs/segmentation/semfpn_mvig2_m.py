# Semantic FPN, MobileViGv2-M, ADE20K 512x512, 8x4 images, 40k iterations.
_base_ = './_base_/semfpn_mvig2.py'
model = dict(
    backbone=dict(
        arch='m',
        init_cfg=dict(checkpoint='checkpoints/mobilevigv2_m_in1k.pth')),
    neck=dict(in_channels=[32, 64, 192, 384]))
