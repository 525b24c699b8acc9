# Mask R-CNN 1x with a MobileViG-M (v1) backbone, MobileViG's own COCO
# recipe (paper: 41.3 AP box / 38.1 AP mask), the same as MobileViGv2's.
_base_ = './_base_/maskrcnn_mvig2_base.py'

model = dict(
    backbone=dict(
        type='MobileViG',
        arch='m',
        init_cfg=dict(checkpoint='checkpoints/mobilevig_m_in1k.pth')),
    neck=dict(in_channels=[42, 84, 224, 400]))
