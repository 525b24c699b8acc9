# Mask R-CNN 1x, GreedyViG-B (its paper's numbers are not in its repository).
_base_ = './_base_/maskrcnn_greedyvig_base.py'

model = dict(
    backbone=dict(arch='b', init_cfg=dict(
        checkpoint='checkpoints/greedyvig_b_in1k.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))
