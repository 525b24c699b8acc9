_base_ = './_base_/maskrcnn_mvig2_base.py'

model = dict(
    backbone=dict(
        arch='s',
        init_cfg=dict(checkpoint='checkpoints/mobilevigv2_s_in1k.pth')),
    neck=dict(in_channels=[32, 64, 128, 256]))
