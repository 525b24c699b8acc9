# Mask R-CNN 1x, GreedyViG-S (its paper's numbers are not in its repository).
_base_ = './_base_/maskrcnn_greedyvig_base.py'

model = dict(
    backbone=dict(arch='s', init_cfg=dict(
        checkpoint='checkpoints/greedyvig_s_in1k.pth')),
    neck=dict(in_channels=[48, 96, 192, 384]))
