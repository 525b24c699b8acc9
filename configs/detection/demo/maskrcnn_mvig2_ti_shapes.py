# The `make demo` detection run: Mask R-CNN with MobileViGv2-Ti trained from
# scratch on CPU on the synthetic shapes dataset
# (tools/demo.py generates it: 400 training and 80 validation images of
# 128x128 px, shapes of 18 to 48 px).
# Small images (128 px), narrow neck and heads, fewer proposals and 300
# iterations: AP^box@0.5 0.98 after 1.3 min of training on 2 cores (README:
# the demo's measured times).
_base_ = '../maskrcnn_mvig2_ti.py'

data_root = 'data/demo/shapes_coco_128/'
classes = ('circle', 'rectangle', 'triangle')
metainfo = dict(classes=classes,
                palette=[(220, 20, 60), (0, 160, 0), (30, 60, 230)])
image_scale = (128, 128)
max_iters = 300

model = dict(
    backbone=dict(
        norm_eval=False,  # trained from scratch: BN statistics must adapt
        drop_path_rate=0.,  # a few hundred iterations need no regularising
        init_cfg=dict(_delete_=True, type='Kaiming', layer='Conv2d',
                      mode='fan_in', nonlinearity='leaky_relu',
                      distribution='normal', bias=0.)),
    # neck and heads 4x narrower than COCO's 256 channels: on CPU the mask
    # head's convs, not the backbone, would otherwise dominate the step time
    neck=dict(out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64,
                  anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256,
                       num_classes=len(classes)),
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(in_channels=64, conv_out_channels=64,
                       num_classes=len(classes))),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100),
                  rcnn=dict(max_per_img=20)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor')),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='train/'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='val/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json',
                     metric=['bbox', 'segm'], format_only=False)
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=2e-3, weight_decay=0.05),
                     clip_grad=dict(max_norm=10, norm_type=2))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=30),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=30, end=max_iters,
         eta_min=1e-5),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False)
randomness = dict(seed=0)  # reproducible demo runs
