"""DistillImageClassifier: a frozen, detached teacher whose arg-max trains
the head's distillation classifier."""
import copy

import pytest
import torch
import torch.nn.functional as F

import mvig2_mm  # noqa: F401  (registers the modules)

NUM_CLASSES = 5
TEACHER = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=18, stem_channels=8, base_channels=8),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=64))


def build(teacher=None, **head):
    from mmpretrain.registry import MODELS
    return MODELS.build(dict(
        type='DistillImageClassifier',
        backbone=dict(type='MobileViGv2', arch='ti'),
        head=dict(type='MobileViGv2Head', num_classes=NUM_CLASSES,
                  in_channels=256, **head),
        teacher=teacher))


@pytest.fixture
def teacher_ckpt(tmp_path):
    from mmpretrain.registry import MODELS
    teacher = MODELS.build(TEACHER)  # random weights will do
    path = tmp_path / 'teacher.pth'
    torch.save(dict(meta=dict(), state_dict=teacher.state_dict()), path)
    return str(path)


def samples(n=4):
    from mmpretrain.structures import DataSample
    return [DataSample().set_gt_label(i % NUM_CLASSES) for i in range(n)]


def test_teacher_is_built_only_for_training(teacher_ckpt, monkeypatch):
    """Built for evaluation, export or inference (and initialised), the
    classifier never builds the teacher or reads its checkpoint; the first
    training loss does, once."""
    from mvig2_mm.models.classifiers import distill_classifier
    loads = []

    def load(path):
        loads.append(path)
        return torch.load(path, weights_only=True)
    monkeypatch.setattr(distill_classifier, 'load_checkpoint_file', load)
    model = build(dict(model=TEACHER, checkpoint=teacher_ckpt))
    model.init_weights()
    model.eval()
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64), samples(2), mode='predict')
    assert model.with_teacher and model.teacher is None and not loads
    model.train()
    model.loss(torch.randn(2, 3, 64, 64), samples(2))
    model.loss(torch.randn(2, 3, 64, 64), samples(2))
    assert model.teacher is not None and loads == [teacher_ckpt]


def test_teacher_is_frozen_and_detached(teacher_ckpt):
    model = build(dict(model=TEACHER, checkpoint=teacher_ckpt))
    teacher = model.load_teacher()
    assert all(m is not teacher for m in model.modules())
    assert not any(k.startswith('teacher') for k in model.state_dict())
    assert not any(p is q for p in model.parameters()
                   for q in teacher.parameters())
    assert not any(p.requires_grad for p in teacher.parameters())
    model.train()
    assert not teacher.training
    # the EMA hook deep-copies the model: the teacher is shared, not copied
    assert copy.deepcopy(model).teacher is teacher
    assert 'teacher=ImageClassifier' in repr(model)


def test_loss_trains_dist_head_on_teacher_argmax(teacher_ckpt):
    model = build(dict(model=TEACHER, checkpoint=teacher_ckpt))
    model.init_weights()
    model.train()
    x = torch.randn(4, 3, 64, 64)
    data_samples = samples()
    losses = model(x, data_samples, mode='loss')
    saved = torch.load(teacher_ckpt, weights_only=True)['state_dict']
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, saved[key])
    assert set(losses) == {'loss_cls', 'loss_dist'}

    with torch.no_grad():
        expected = model.teacher(x, mode='tensor').argmax(1)
        cls_logits, dist_logits = model.head.forward_logits(
            model.extract_feat(x))
    assert torch.equal(torch.stack([s.teacher_label for s in data_samples]),
                       expected)
    torch.testing.assert_close(losses['loss_dist'],
                               0.5 * F.cross_entropy(dist_logits, expected))
    torch.testing.assert_close(losses['loss_cls'], 0.5 * F.cross_entropy(
        cls_logits, torch.arange(4) % NUM_CLASSES))

    sum(losses.values()).backward()
    assert model.head.fc_dist.weight.grad is not None
    assert all(p.grad is None for p in model.teacher.parameters())
    assert not model.teacher.training


def test_missing_teacher_checkpoint(tmp_path):
    model = build(dict(model=TEACHER, checkpoint=str(tmp_path / 'no.pth')))
    model.init_weights()  # the student's: does not need the teacher
    with pytest.raises(FileNotFoundError,
                       match=r'Teacher checkpoint not found.*no\.pth.*'
                       r'model\.teacher=None'):
        model.loss(torch.randn(2, 3, 64, 64), samples(2))


def test_teacher_checkpoint_must_fit(tmp_path):
    bad = tmp_path / 'bad.pth'
    torch.save({'backbone.conv1.weight': torch.zeros(1)}, bad)
    model = build(dict(model=TEACHER, checkpoint=str(bad)))
    with pytest.raises(RuntimeError, match='does not fit the teacher'):
        model.load_teacher()


def test_teacher_classes_must_match(tmp_path):
    from mmpretrain.registry import MODELS
    teacher = copy.deepcopy(TEACHER)
    teacher['head']['num_classes'] = 7
    path = tmp_path / 'teacher7.pth'
    torch.save(MODELS.build(teacher).state_dict(), path)
    model = build(dict(model=teacher, checkpoint=str(path)))
    model.init_weights()
    with pytest.raises(ValueError, match=r'must return \(N, 5\) logits'):
        model.loss(torch.randn(2, 3, 64, 64), samples(2))


def test_teacher_from_config_file(tmp_path, teacher_ckpt):
    cfg = tmp_path / 'teacher_cfg.py'
    cfg.write_text(f'model = {TEACHER!r}\n')
    model = build(dict(config=str(cfg), checkpoint=teacher_ckpt))
    assert type(model.load_teacher()).__name__ == 'ImageClassifier'
    assert model.teacher.head.num_classes == NUM_CLASSES


@pytest.mark.parametrize('teacher,head,match', [
    (dict(model=TEACHER), {}, 'teacher needs a checkpoint'),
    (dict(model=TEACHER, config='x.py', checkpoint='t.pth'), {},
     'teacher must be dict'),
    (dict(model=TEACHER, checkpoint='t.pth', weight=0.5), {},
     'teacher must be dict'),
    (dict(model=TEACHER, checkpoint='t.pth'), dict(distillation=False),
     'needs a head with a distillation classifier'),
])
def test_invalid_teacher(teacher, head, match):
    with pytest.raises(ValueError, match=match):
        build(teacher, **head)


def test_without_teacher_is_a_plain_classifier():
    from mmpretrain.registry import MODELS
    model = build(None)
    assert not model.with_teacher and model.teacher is None
    model.init_weights()
    model.train()
    losses = model(torch.randn(2, 3, 64, 64), samples(2), mode='loss')
    assert set(losses) == {'loss_cls', 'loss_dist'}  # both heads on the labels
    # its weights are those of an ImageClassifier with the same head
    plain = MODELS.build(dict(
        type='ImageClassifier', backbone=dict(type='MobileViGv2', arch='ti'),
        head=dict(type='MobileViGv2Head', num_classes=NUM_CLASSES,
                  in_channels=256)))
    plain.load_state_dict(model.state_dict(), strict=True)
