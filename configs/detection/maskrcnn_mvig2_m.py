_base_ = './_base_/maskrcnn_mvig2_base.py'

model = dict(
    backbone=dict(
        arch='m',
        init_cfg=dict(checkpoint='checkpoints/mobilevigv2_m_in1k.pth')),
    neck=dict(in_channels=[32, 64, 192, 384]))
