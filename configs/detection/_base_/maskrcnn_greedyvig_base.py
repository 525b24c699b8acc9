# Mask R-CNN + FPN 1x with a GreedyViG backbone, GreedyViG's own COCO recipe
# (its detection/ code): MobileViGv2's, with weight decay 0.05 for every
# variant (configs/detection/README.md, "Audit"). GreedyViG's reference
# spreads the drop path rate linearly, so drop_path_schedule='reference'
# gives the linear rates here.
_base_ = './maskrcnn_mvig2_base.py'

model = dict(backbone=dict(type='GreedyViG'))
