# Mask R-CNN 1x, MobileViG-B (v1) (paper: 42.0 AP box / 38.9 AP mask).
_base_ = './_base_/maskrcnn_mvig_base.py'

model = dict(
    backbone=dict(
        arch='b',
        init_cfg=dict(checkpoint='checkpoints/mobilevig_b_in1k.pth')),
    neck=dict(in_channels=[42, 84, 240, 464]))

optim_wrapper = dict(optimizer=dict(weight_decay=1e-4))
