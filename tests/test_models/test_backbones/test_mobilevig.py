"""MobileViG (v1): parity with the reference, SVGA, training API, errors.
The behaviours pinned for MobileViGv2 in test_mobilevigv2.py, for the
predecessor family; what both share is in test_base.py."""
import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mvig2_mm.models import MobileViG, MobileViGv2
from mvig2_mm.models.backbones.base import every_shift_in_graph
from mvig2_mm.models.backbones.mobilevig import SVGABlock, svga_features
from mvig2_mm.weights import (CheckpointMismatchError, check_checkpoint,
                              convert_reference_state_dict)

CHANNELS = dict(ti=[42, 84, 168, 256], s=[42, 84, 176, 256],
                m=[42, 84, 224, 400], b=[42, 84, 240, 464])


def backbone_state_dict(reference, variant):
    converted = convert_reference_state_dict(
        reference.state_dict(variant, 'mobilevig'))
    return {k[len('backbone.'):]: v for k, v in converted.items()
            if k.startswith('backbone.')}


def reference_svga(x, K):
    """The reference's x_j (MobileViG's MRConv4d), with its slicing."""
    x_j = x - x
    for i in range(K, x.shape[2], K):
        x_j = torch.max(x_j, x - torch.cat([x[:, :, -i:], x[:, :, :-i]], 2))
    for i in range(K, x.shape[3], K):
        x_j = torch.max(x_j, x - torch.cat([x[..., -i:], x[..., :-i]], 3))
    return x_j


# ---------------------------------------------------------------- parity
@pytest.mark.parametrize('variant', ['ti', 's', 'm'])
def test_parity_with_reference_features(reference, variant):
    model = MobileViG(variant).eval()
    model.load_state_dict(backbone_state_dict(reference, variant), strict=True)
    expected = reference.expected(variant, 'mobilevig')['features']
    _, x = reference.inputs()
    with torch.no_grad():
        outs = model(x)
    assert [o.shape[1] for o in outs] == CHANNELS[variant]
    for out, exp in zip(outs, expected):
        torch.testing.assert_close(out, exp, atol=1e-4, rtol=1e-4)

    model.switch_to_deploy()
    assert model.deploy
    assert not any(isinstance(m, _BatchNorm) for m in model.modules())
    assert not any('layer_scale' in n for n, _ in model.named_parameters())
    with torch.no_grad():
        deployed = model(x)
    for out, exp in zip(deployed, expected):
        torch.testing.assert_close(out, exp, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('variant,params', [('ti', 5.27), ('s', 7.28),
                                            ('m', 14.08)])
def test_classifier_parity_and_params(reference, variant, params):
    """The reference classifier's logits, before and after deploy, and its
    parameter count (reference: Ti 5.27 M, S 7.28 M, M 14.08 M)."""
    from mmpretrain.registry import MODELS

    from mvig2_mm.models import imagenet_classifier_cfg
    from mvig2_mm.models.utils import switch_to_deploy
    model = MODELS.build(
        imagenet_classifier_cfg(variant, backbone='MobileViG'))
    model.eval()
    check_checkpoint(model, reference.state_dict(variant, 'mobilevig'))
    model.load_state_dict(reference.state_dict(variant, 'mobilevig'))
    assert round(sum(p.numel() for p in model.parameters()) / 1e6,
                 2) == params
    x, _ = reference.inputs()
    expected = reference.expected(variant, 'mobilevig')['logits']
    with torch.no_grad():
        torch.testing.assert_close(model(x, mode='tensor'), expected,
                                   atol=1e-4, rtol=1e-4)
        switch_to_deploy(model)
        torch.testing.assert_close(model(x, mode='tensor'), expected,
                                   atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('hw', [(7, 7), (5, 9), (2, 2), (1, 1), (25, 42),
                                (3, 8)])
@pytest.mark.parametrize('hop', [2, 3])
def test_svga_features_match_reference_slicing(hw, hop):
    x = torch.randn(2, 3, *hw)
    expected = reference_svga(x, hop)
    assert torch.equal(svga_features(x, hop), expected)
    # the form a captured graph uses (any size)
    nearest = torch.minimum(every_shift_in_graph(x, hop, 2).amin(2),
                            every_shift_in_graph(x, hop, 3).amin(3))
    assert torch.equal(torch.relu(x - nearest), expected)


def test_traced_graph_is_right_for_other_sizes():
    """The traced SVGA aggregation (ONNX's TorchScript exporter traces)
    computes its shifts from the size, not from the size it was traced
    at."""
    traced = torch.jit.trace(lambda t: svga_features(t, 2),
                             torch.randn(1, 2, 7, 7))
    for hw in [(7, 7), (9, 12), (3, 2)]:
        x = torch.randn(1, 2, *hw)
        assert torch.equal(traced(x), reference_svga(x, 2))


# ------------------------------------------------------------ training API
def test_frozen_stages_and_norm_eval():
    model = MobileViG('ti', frozen_stages=2, norm_eval=True).train()
    for module in [model.stem, model.stages[0], model.stages[1]]:
        assert all(not p.requires_grad for p in module.parameters())
    assert all(p.requires_grad for p in model.stages[2:].parameters())
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    stats = bns[-1].running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(bns[-1].running_mean, stats)


def test_drop_path_rates_linear_over_all_blocks():
    model = MobileViG('ti', drop_path_rate=0.2)
    blocks = [m for stage in model.stages for m in stage
              if hasattr(m, 'drop_path')]
    assert len(blocks) == 12 and isinstance(blocks[-1], SVGABlock)
    rates = [getattr(b.drop_path, 'drop_prob', 0.) for b in blocks]
    assert rates == pytest.approx(torch.linspace(0, 0.2, 12).tolist())
    # MobileViG's reference spreads its rate linearly too
    # (detection/mobilevig_backbone.py:240-266)
    reference = MobileViG('ti', drop_path_rate=0.2,
                          drop_path_schedule='reference')
    assert [getattr(b.drop_path, 'drop_prob', 0.) for stage in
            reference.stages for b in stage if hasattr(b, 'drop_path')
            ] == pytest.approx(rates)


# ------------------------------------------------------------ errors
def test_unknown_arch_and_bad_dict():
    with pytest.raises(ValueError, match=r"Unavailable arch 'xl'.*'b', 'm', "
                                         r"'s', 'ti'"):
        MobileViG('xl')
    with pytest.raises(ValueError, match=r"missing \['blocks'\]"):
        MobileViG(dict(channels=[42, 84, 168, 256]))


def test_checkpoint_of_the_other_family_says_so(reference):
    v1 = reference.state_dict('ti', 'mobilevig')
    v2 = reference.state_dict('ti')
    with pytest.raises(CheckpointMismatchError,
                       match='it is a MobileViG checkpoint and the model is '
                             'MobileViGv2: use a MobileViG config'):
        check_checkpoint(MobileViGv2('ti'), {
            k: v for k, v in v1.items()
            if k.startswith(('stem.', 'local_backbone.', 'backbone.'))})
    with pytest.raises(CheckpointMismatchError,
                       match='it is a MobileViGv2 checkpoint and the model '
                             'is MobileViG: use a MobileViGv2 config'):
        check_checkpoint(MobileViG('ti'), {
            k: v for k, v in v2.items()
            if k.startswith(('stem.', 'backbone.'))})
