# Training recipe shared by the MobileViGv2 ADE20K configs (any decoder), as
# the reference runs (MobileViGv2's segmentation/ code; every setting with its
# file and line: configs/segmentation/README.md, "Audit"): 512x512 crops,
# 8 GPUs x 4 images, AdamW lr 2e-4 wd 1e-4, poly decay (power 0.9) to 0 over
# 40k iterations, BatchNorm synchronised across GPUs, and the reference's
# test-time "align resize" (keep ratio inside 2048x512, then sides rounded up
# to multiples of 32). Pair it with an mmseg model base; see semfpn_mvig2.py.
_base_ = [
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
]
custom_imports = dict(imports=['mvig2_mm'], allow_failed_imports=False)

# mmengine converts every BatchNorm of the model (the backbone's too: the
# reference converts its backbone to SyncBatchNorm) to torch's SyncBatchNorm
# in distributed runs; a single process keeps plain BatchNorm (and so do CPU
# runs with the gloo backend: SyncBatchNorm needs CUDA).
sync_bn = 'torch'

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='AlignResize', scale=(2048, 512), keep_ratio=True,
         size_divisor=32),
    # annotations are loaded after the resize: metrics use the original
    # size (predictions are resized back to ``ori_shape``)
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=4)  # x 8 GPUs = 32
val_dataloader = dict(batch_size=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optimizer = dict(_delete_=True, type='AdamW', lr=2e-4, weight_decay=1e-4)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=40000,
         by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000,
                 val_interval=4000)
# the learning rate above is for 8 GPUs x 4 images
auto_scale_lr = dict(enable=False, base_batch_size=32)
