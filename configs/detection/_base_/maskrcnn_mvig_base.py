# Mask R-CNN + FPN 1x with a MobileViG (v1) backbone, MobileViG's own COCO
# recipe (its detection/ code): MobileViGv2's, with 2 images per GPU on the
# 4 GPUs of MobileViG's published log (configs/detection/README.md, "Audit").
# MobileViG's reference spreads the drop path rate linearly, so
# drop_path_schedule='reference' gives the linear rates here.
_base_ = './maskrcnn_mvig2_base.py'

model = dict(backbone=dict(type='MobileViG'))

train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(base_batch_size=8)
