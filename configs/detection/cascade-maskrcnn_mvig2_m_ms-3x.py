# Cascade Mask R-CNN + FPN, 3x schedule with multi-scale training (shorter
# side 640-800), with MobileViGv2-M. Not in the paper: the backbone settings
# and optimizer of its Mask R-CNN recipe carried over; the schedule is
# mmdet's ms-3x (the dataset repeated 3 times per epoch, LR x0.1 after
# epochs 9 and 11 of 12, i.e. 27 and 33 of 36 passes).
_base_ = 'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_ms-3x_coco.py'

custom_imports = dict(imports=['mvig2_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileViGv2',
        arch='m',
        out_indices=(0, 1, 2, 3),
        norm_eval=False,  # trained, synchronised (sync_bn), as Mask R-CNN's
        drop_path_rate=0.1,
        drop_path_schedule='reference',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/mobilevigv2_m_in1k.pth',
            prefix='backbone.',
            use_ema=True)),  # the reference starts from the EMA weights
    neck=dict(in_channels=[32, 64, 192, 384]))

sync_bn = 'torch'

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=2e-4,
        betas=(0.9, 0.999),
        weight_decay=0.05))

# 8 GPUs x 2 images; --auto-scale-lr rescales lr for another total batch size
train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
