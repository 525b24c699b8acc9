# RetinaNet + FPN, 1x schedule, with MobileViGv2-M. Not in the paper: the
# backbone settings and optimizer of its Mask R-CNN recipe carried over.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'

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
    # all four stages; RetinaNet's FPN starts at stride 8 (start_level=1) and
    # builds P6/P7 from the last stage (add_extra_convs='on_input')
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
