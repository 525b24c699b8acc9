# Mask R-CNN 1x, MobileViG-M (v1) (paper: 41.3 AP box / 38.1 AP mask).
_base_ = './_base_/maskrcnn_mvig_base.py'

model = dict(
    backbone=dict(
        arch='m',
        init_cfg=dict(checkpoint='checkpoints/mobilevig_m_in1k.pth')),
    neck=dict(in_channels=[42, 84, 224, 400]))
