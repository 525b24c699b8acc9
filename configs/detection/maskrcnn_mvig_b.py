# Mask R-CNN 1x with a MobileViG-B (v1) backbone, MobileViG's own COCO
# recipe (paper: 42.0 AP box / 38.9 AP mask), the same as MobileViGv2's.
_base_ = './_base_/maskrcnn_mvig2_base.py'

model = dict(
    backbone=dict(
        type='MobileViG',
        arch='b',
        init_cfg=dict(checkpoint='checkpoints/mobilevig_b_in1k.pth')),
    neck=dict(in_channels=[42, 84, 240, 464]))

optim_wrapper = dict(optimizer=dict(weight_decay=1e-4))
