# Semantic FPN, GreedyViG-B, ADE20K 512x512, 8x4 images, 40k iterations.
_base_ = './_base_/semfpn_greedyvig.py'
model = dict(
    backbone=dict(arch='b', init_cfg=dict(
        checkpoint='checkpoints/greedyvig_b_in1k.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))
