# Semantic FPN with a GreedyViG backbone on ADE20K: GreedyViG's own recipe
# (its segmentation/ code), which is MobileViGv2's (configs/segmentation/
# README.md, "Audit"); its drop path rates are linear.
_base_ = './semfpn_mvig2.py'
model = dict(backbone=dict(type='GreedyViG'))
