# Mask R-CNN + FPN, 1x schedule, with a MobileViGv2 backbone, trained as the
# reference runs were (MobileViGv2's detection/ code; every setting with its
# file and line: configs/detection/README.md, "Audit"). The variants
# maskrcnn_mvig2_{ti,s,m,b}.py set backbone.arch, neck.in_channels (the four
# stage channels), the ImageNet checkpoint and, for b, the weight decay;
# MobileViG (v1) configs also set its batch.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mvig2_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileViGv2',
        out_indices=(0, 1, 2, 3),
        # BatchNorm in training mode, synchronised across GPUs (sync_bn
        # below): what the reference ran. Its backbone converts its norms
        # to SyncBatchNorm, and its train() freezes only nn.BatchNorm2d
        # modules, which SyncBatchNorm is not.
        norm_eval=False,
        drop_path_rate=0.1,
        drop_path_schedule='reference',
        # the reference starts from the EMA weights of the ImageNet file
        # (a file without them, e.g. a converted one, gives its only weights)
        init_cfg=dict(type='Pretrained', prefix='backbone.', use_ema=True)))

# mmengine converts every BatchNorm of the model to torch's SyncBatchNorm in
# distributed runs; a single process keeps plain BatchNorm (and so do CPU
# runs with the gloo backend: SyncBatchNorm needs CUDA).
sync_bn = 'torch'

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=2e-4,
        betas=(0.9, 0.999),
        weight_decay=0.05))

max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=1)
param_scheduler = [
    # mmdet 2.x's linear warm-up with warmup_ratio=1e-6 over 500 iterations
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[8, 11], gamma=0.1)
]

# 1 image per GPU, as the reference ("was 2, made 1 to avoid out of
# memory"). Its GPU count is not stated; the lr is taken as it is for 4 GPUs,
# those of MobileViG's published log (configs/detection/README.md).
# --auto-scale-lr rescales the lr for another total batch size.
train_dataloader = dict(batch_size=1)
auto_scale_lr = dict(enable=False, base_batch_size=4)
