import pytest
import torch

from mvig2_mm.weights import convert_reference_state_dict

HEAD = dict(type='MobileViGv2Head', num_classes=1000)
WIDTHS = dict(ti=(256, 512), s=(256, 512), m=(384, 512), b=(512, 768))


def build_classifier(arch, **head):
    from mmpretrain.registry import MODELS
    in_channels, emb_dims = WIDTHS[arch]
    return MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='MobileViGv2', arch=arch),
        head=dict(HEAD, in_channels=in_channels, emb_dims=emb_dims, **head)))


@pytest.mark.parametrize('variant', ['ti', 's', 'm'])
def test_classifier_gives_reference_logits(reference, variant):
    model = build_classifier(variant).eval()
    model.load_state_dict(
        convert_reference_state_dict(reference.state_dict(variant)),
        strict=True)
    expected = reference.expected(variant)['logits']
    x, _ = reference.inputs()
    with torch.no_grad():
        logits = model(x, mode='tensor')
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)

    model.backbone.switch_to_deploy()
    model.head.switch_to_deploy()
    assert not hasattr(model.head, 'fc_dist')
    with torch.no_grad():
        torch.testing.assert_close(model(x, mode='tensor'), expected,
                                   atol=1e-4, rtol=1e-4)


def test_training_returns_both_losses_and_predict_uses_the_mean():
    from mmpretrain.structures import DataSample
    model = build_classifier('ti', num_classes=5)
    model.init_weights()
    x = torch.randn(4, 3, 64, 64)
    samples = [DataSample().set_gt_label(i % 5) for i in range(4)]
    model.train()
    losses = model(x, samples, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_dist'}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.head.fc_dist.weight.grad is not None

    # fc_dist follows the teacher's labels when the samples carry them
    for s in samples:
        s.set_field(torch.tensor(0), 'teacher_label')
    model.zero_grad()
    teacher_loss = model(x, samples, mode='loss')['loss_dist']
    assert not torch.allclose(teacher_loss, losses['loss_dist'])

    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(x)
        cls, dist = model.head.forward_logits(feats)
        preds = model(x, mode='predict')
    torch.testing.assert_close(preds[0].pred_score,
                               ((cls + dist) / 2).softmax(-1)[0])


def test_head_without_distillation():
    model = build_classifier('ti', distillation=False).eval()
    assert not hasattr(model.head, 'fc_dist')
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 64, 64), mode='tensor')
        assert logits.shape == (1, 1000)


def test_bad_num_classes():
    with pytest.raises(ValueError, match='num_classes must be positive'):
        build_classifier('ti', num_classes=0)
