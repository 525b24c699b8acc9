# The `make demo` segmentation run: Semantic FPN with MobileViGv2-Ti trained
# from scratch on CPU on synthetic shapes in the ADE20K folder layout
# (python -m mvig2_mm.testing.synthetic_ade20k data/demo/shapes_ade).
_base_ = '../semfpn_mvig2_ti.py'

data_root = 'data/demo/shapes_ade/'
metainfo = dict(classes=('background', 'circle', 'rectangle', 'triangle'),
                palette=[(120, 120, 120), (220, 20, 60), (0, 160, 0),
                         (30, 60, 230)])
image_scale = (128, 128)
max_iters = 250
norm_cfg = dict(type='BN', requires_grad=True)  # one process: no SyncBN

model = dict(
    data_preprocessor=dict(size=image_scale),
    backbone=dict(
        norm_eval=False,  # trained from scratch: BN statistics must adapt
        drop_path_rate=0.,  # a few hundred iterations need no regularising
        init_cfg=dict(_delete_=True, type='Kaiming', layer='Conv2d',
                      mode='fan_in', nonlinearity='leaky_relu',
                      distribution='normal', bias=0.)),
    neck=dict(out_channels=64),
    decode_head=dict(in_channels=[64, 64, 64, 64], channels=64,
                     num_classes=4, norm_cfg=norm_cfg))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='AlignResize', scale=image_scale, keep_ratio=True,
         size_divisor=32),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo,
               img_suffix='.jpg', seg_map_suffix='.png',
               reduce_zero_label=True)
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(dataset, _delete_=True, pipeline=train_pipeline,
                 data_prefix=dict(img_path='images/training',
                                  seg_map_path='annotations/training')))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(dataset, _delete_=True, pipeline=test_pipeline,
                 data_prefix=dict(img_path='images/validation',
                                  seg_map_path='annotations/validation')))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=2e-3, weight_decay=1e-4))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=25),
    dict(type='PolyLR', power=0.9, eta_min=0., by_epoch=False, begin=25,
         end=max_iters),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=1))
randomness = dict(seed=0)  # reproducible demo runs
