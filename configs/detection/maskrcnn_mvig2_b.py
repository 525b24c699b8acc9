_base_ = './_base_/maskrcnn_mvig2_base.py'

model = dict(
    backbone=dict(
        arch='b',
        init_cfg=dict(checkpoint='checkpoints/mobilevigv2_b_in1k.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))

optim_wrapper = dict(optimizer=dict(weight_decay=1e-4))
