# MobileViGv2 ImageNet-1k recipe of the reference code (DeiT-style), shared by
# mvig2_{ti,s,m,b}_in1k.py; a variant sets the arch and the head's widths.
#
# 16 GPUs x 128 images, 300 epochs, AdamW, cosine schedule with 20 warm-up
# epochs, RandAugment m9-mstd0.5, random erasing 0.25, mixup 0.8 / cutmix 1.0,
# label smoothing 0.1, repeated augmentation, EMA, hard distillation.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]

custom_imports = dict(imports=['mvig2_mm'], allow_failed_imports=False)

# ---------------------------------------------------------------- model
model = dict(
    type='DistillImageClassifier',
    backbone=dict(
        type='MobileViGv2',
        arch='ti',
        # The reference's per-block rates (MobileViGv2: lower than a linear
        # spread, see the backbone's docstring; MobileViG: linear).
        drop_path_rate=0.1,
        drop_path_schedule='reference'),
    neck=None,
    head=dict(
        type='MobileViGv2Head',
        num_classes=1000,
        in_channels=256,
        emb_dims=512,
        # Label smoothing 0.1 (applied to the mixed labels, which equals
        # timm's mixup with smoothing); the distillation classifier learns
        # from the teacher's hard labels with plain cross-entropy (DeiT).
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')),
    # Distillation teacher. The reference distils from RegNetY-160 (timm's
    # `regnety_160.deit_in1k`, 82.6% top-1, DeiT's teacher), which mmpretrain
    # does not ship (it has RegNetX only). Any mmpretrain classifier config +
    # checkpoint can be the teacher; the default is the closest ConvNet that
    # mmpretrain trained on ImageNet-1k alone at 224 px: ConvNeXt-S (83.16%).
    #  - the exact reference teacher, with timm installed (not a dependency):
    #      model.teacher = dict(
    #          model=dict(type='TimmClassifier', model_name='regnety_160'),
    #          checkpoint='checkpoints/regnety_160_deit.pth')
    #    the file holding timm's weights, e.g. saved with
    #    torch.save(timm.create_model('regnety_160.deit_in1k',
    #                                 pretrained=True).state_dict(), path)
    #  - no distillation: `--cfg-options model.teacher=None`; both classifiers
    #    of the head then learn from the labels. The student's checkpoints are
    #    the same either way: the teacher is never part of them.
    # The checkpoint is loaded when training starts (a URL is downloaded
    # once); evaluation never needs it.
    teacher=dict(
        config='mmpretrain::convnext/convnext-small_32xb128_in1k.py',
        checkpoint='https://download.openmmlab.com/mmclassification/v0/'
        'convnext/convnext-small_32xb128_in1k_20221207-4ab7052c.pth'),
    # Mixup 0.8 / CutMix 1.0, one of them per batch (timm switch_prob 0.5).
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ]),
)

# ---------------------------------------------------------------- data
# The train pipeline of the base (RandomResizedCrop 224 bicubic, flip,
# RandAugment 'timm_increasing' m9 mstd 0.5, RandomErasing 0.25) is the
# reference's. Test: resize the short side to 248 = 224 / 0.9 (bicubic),
# centre-crop 224.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge',
        scale=248,
        edge='short',
        backend='pillow',
        interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=128,
    # Repeated augmentation (3 repeats), as DeiT.
    sampler=dict(type='RepeatAugSampler', shuffle=True),
)
val_dataloader = dict(batch_size=128, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# ---------------------------------------------------------------- schedule
# The reference's lr is 2e-3 x total_batch / 1024: 4e-3 for its 16 x 128 =
# 2048 images. `auto_scale_lr` records that this lr belongs to a batch of 2048,
# so `--auto-scale-lr` rescales it linearly for another GPU count and keeps
# lr = 2e-3 x batch / 1024.
optim_wrapper = dict(
    optimizer=dict(
        type='AdamW', lr=4e-3, weight_decay=0.05, eps=1e-8,
        betas=(0.9, 0.999)),
    # No weight decay on norms, biases and other 1-D parameters (timm's
    # default); the (C, 1, 1) layer scales do decay, as in the reference.
    paramwise_cfg=dict(
        _delete_=True,
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0),
)
auto_scale_lr = dict(base_batch_size=2048)

param_scheduler = [
    # Linear warm-up over 20 epochs from 1e-6 (= 4e-3 x 2.5e-4), per iteration.
    dict(
        type='LinearLR',
        start_factor=2.5e-4,
        by_epoch=True,
        end=20,
        convert_to_iter_based=True),
    # Cosine to 1e-5 at epoch 300, stepped per epoch as timm's scheduler.
    dict(
        type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=20,
        end=300),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)

# ---------------------------------------------------------------- runtime
# BatchNorm synchronised across GPUs (the reference's --sync-bn, on by
# default): mmengine converts the model's norms in distributed runs.
sync_bn = 'torch'
# EMA of the weights, decay 0.99996 per iteration (timm ModelEma, which also
# averages the BatchNorm statistics). Checkpoints then hold the EMA weights in
# `state_dict` and the live ones in `ema_state_dict`.
custom_hooks = [
    dict(
        type='EMAHook',
        momentum=4e-5,
        update_buffers=True,
        priority='ABOVE_NORMAL'),
]
default_hooks = dict(
    checkpoint=dict(
        type='CheckpointHook', interval=1, max_keep_ckpts=3,
        save_best='auto'))
