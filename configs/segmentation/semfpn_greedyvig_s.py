# Semantic FPN, GreedyViG-S, ADE20K 512x512, 8x4 images, 40k iterations.
_base_ = './_base_/semfpn_greedyvig.py'
model = dict(
    backbone=dict(arch='s', init_cfg=dict(
        checkpoint='checkpoints/greedyvig_s_in1k.pth')),
    neck=dict(in_channels=[48, 96, 192, 384]))
