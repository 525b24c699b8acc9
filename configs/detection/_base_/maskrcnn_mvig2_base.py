# Mask R-CNN + FPN, 1x schedule, with a MobileViGv2 backbone: what the
# variants maskrcnn_mvig2_{ti,s,m,b}.py share. They add the
# variant: backbone.arch, neck.in_channels (the four stage channels), the
# ImageNet checkpoint and, for b, the weight decay.
#
# The paper's recipe: AdamW lr 2e-4 (weight decay 0.05; 1e-4 for b), 500-iter
# linear warm-up, LR x0.1 after epochs 8 and 11 of 12, 1333x800, 8 GPUs x 2
# images, backbone BatchNorm in eval mode throughout training.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mvig2_mm'], allow_failed_imports=False)

# Tune mode: the frozen-BN convs compute conv(x, W*s) + b' (same results,
# measured -22% peak memory for a Mask R-CNN-M step, -28% for the backbone;
# README, table 5). Needs with_cp=False and drop_path_rate=0 (torch.fx).
efficient_conv_bn_eval = ['backbone']

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileViGv2',
        out_indices=(0, 1, 2, 3),
        norm_eval=True,
        # the reference starts from the EMA weights of the ImageNet file
        # (a file without them, e.g. a converted one, gives its only weights)
        init_cfg=dict(type='Pretrained', prefix='backbone.', use_ema=True)))

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
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[8, 11], gamma=0.1)
]

# 8 GPUs x 2 images; --auto-scale-lr rescales lr for another total batch size
train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
