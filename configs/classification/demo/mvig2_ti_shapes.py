# The `make demo` classification run: MobileViGv2-Ti trained from scratch on
# CPU on a synthetic ImageNet-layout dataset of coloured shapes
# (python -m mvig2_mm.testing.synthetic_imagenet data/demo/shapes_in1k
#  --num-classes 8 --train-per-class 60 --val-per-class 20 --size 64),
# without distillation (both classifiers on the labels).
_base_ = '../mvig2_ti_in1k.py'

data_root = 'data/demo/shapes_in1k'
num_classes = 8
max_epochs = 6

model = dict(
    teacher=None,
    backbone=dict(drop_path_rate=0.),
    head=dict(num_classes=num_classes, topk=(1, )),
    train_cfg=dict(_delete_=True))  # no mixup/cutmix batch augments
data_preprocessor = dict(num_classes=num_classes)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.6, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=64, edge='short'),
    dict(type='CenterCrop', crop_size=64),
    dict(type='PackInputs'),
]
dataset = dict(type='ImageNet', data_root=data_root,
               classes=data_root + '/meta/classes.txt')
train_dataloader = dict(
    batch_size=16, num_workers=0, persistent_workers=False,
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),
    dataset=dict(dataset, _delete_=True, split='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    dataset=dict(dataset, _delete_=True, split='val', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=2e-3))
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, eta_min=1e-5),
]
custom_hooks = []  # no EMA for a run this short
auto_scale_lr = dict(enable=False)
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0)  # reproducible demo runs
