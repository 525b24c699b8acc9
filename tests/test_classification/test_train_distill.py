"""A few training iterations of the ImageNet recipe (distillation, mixup /
cutmix, repeated augmentation, EMA) with mmengine's Runner on a tiny
synthetic dataset, CPU only."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook

import mvig2_mm  # noqa: F401  (registers the modules)
from mvig2_mm.testing.synthetic_imagenet import generate

CONFIG = (Path(__file__).resolve().parents[2] / 'configs' / 'classification' /
          'mvig2_ti_in1k.py')
NUM_CLASSES = 4
TEACHER = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=18, stem_channels=8, base_channels=8),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=64))


class RecordLosses(Hook):
    def __init__(self):
        self.logs = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.logs.append(dict(outputs))


def tiny_config(root: Path, work_dir: Path, teacher_ckpt: str) -> Config:
    """The real ti recipe, shrunk: 64 px images, batch 4, one epoch."""
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = str(work_dir)
    cfg.model.head.num_classes = NUM_CLASSES
    cfg.model.teacher = dict(model=TEACHER, checkpoint=teacher_ckpt)
    cfg.data_preprocessor.num_classes = NUM_CLASSES  # mixup's one-hot labels
    train = cfg.train_dataloader
    for step in train.dataset.pipeline:
        if step.type == 'RandomResizedCrop':
            step.scale = 64
    test_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='ResizeEdge', scale=72, edge='short', backend='pillow',
             interpolation='bicubic'),
        dict(type='CenterCrop', crop_size=64),
        dict(type='PackInputs'),
    ]
    data = dict(data_root=str(root),
                classes=str(root / 'meta' / 'classes.txt'))
    train.update(batch_size=4, num_workers=0, persistent_workers=False)
    train.dataset.update(data)
    cfg.val_dataloader.update(batch_size=4, num_workers=0,
                              persistent_workers=False)
    cfg.val_dataloader.dataset.update(data, pipeline=test_pipeline)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator = cfg.test_evaluator = dict(type='Accuracy', topk=(1, ))
    cfg.train_cfg.max_epochs = 1
    # a faster EMA than the recipe's 4e-5, so that a few steps move it
    cfg.custom_hooks[0].momentum = 0.1
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.update(max_keep_ckpts=1, save_best=None)
    cfg.randomness = dict(seed=0)
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    return cfg


@pytest.mark.slow
def test_train_with_distillation_and_ema(tmp_path):
    from mmengine.runner import Runner
    from mmpretrain.registry import MODELS

    root = tmp_path / 'data'
    # 4 classes x 4 images = 16 images: 4 iterations of 4 (repeat sampler)
    generate(str(root), num_classes=NUM_CLASSES, train_per_class=4,
             val_per_class=1, size=64)
    teacher_ckpt = str(tmp_path / 'teacher.pth')
    torch.save(dict(state_dict=MODELS.build(TEACHER).state_dict()),
               teacher_ckpt)

    runner = Runner.from_cfg(
        tiny_config(root, tmp_path / 'work', teacher_ckpt))
    record = RecordLosses()
    runner.register_hook(record)
    model = runner.model
    assert type(model).__name__ == 'DistillImageClassifier'
    assert type(runner.train_dataloader.sampler).__name__ == \
        'RepeatAugSampler'
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    runner.train()

    # the teacher was loaded and trained nothing; both losses were optimised
    assert model.teacher is not None and not model.teacher.training
    assert len(record.logs) == 4
    for log in record.logs:
        assert {'loss_cls', 'loss_dist'} <= set(log)
        assert all(torch.isfinite(torch.as_tensor(v)) for v in log.values())

    # the EMA weights moved, and differ from the live ones
    ema_hook = next(h for h in runner.hooks if type(h).__name__ == 'EMAHook')
    ema = dict(ema_hook.ema_model.module.named_parameters())
    live = dict(model.named_parameters())
    assert ema.keys() == live.keys()
    assert any(not torch.equal(ema[k], live[k]) for k in live)
    assert any(not torch.equal(ema[k], initial[k]) for k in live)
    for key in ('head.fc.weight', 'backbone.stem.0.conv.weight'):
        assert not torch.equal(ema[key], live[key])

    # the checkpoint holds the student only (EMA weights in state_dict)
    ckpt = torch.load(tmp_path / 'work' / 'epoch_1.pth', weights_only=True)
    assert not any('teacher' in k for k in ckpt['state_dict'])
    assert ckpt['state_dict'].keys() == model.state_dict().keys()
    assert 'ema_state_dict' in ckpt
    assert torch.equal(ckpt['state_dict']['head.fc.weight'],
                       ema['head.fc.weight'])
