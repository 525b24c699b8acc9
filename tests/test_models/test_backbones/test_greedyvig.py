"""GreedyViG: parity with the reference (float32 and float64, training and
deploy form), the dynamic axial graph at every size and batch, its form in a
captured graph, gradients, and what it shares with MobileViGv2."""
import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mvig2_mm.models import GreedyViG, MobileViGv2
from mvig2_mm.models.backbones.greedyvig import dynamic_axial_features
from mvig2_mm.weights import convert_reference_state_dict

FAMILY = 'greedyvig'


def backbone_state_dict(reference, variant):
    converted = convert_reference_state_dict(
        reference.state_dict(variant, FAMILY))
    return {k[len('backbone.'):]: v for k, v in converted.items()
            if k.startswith('backbone.')}


def reference_dagc(x, K):
    """The reference's x_j (DynamicMRConv4d.forward), written with its
    slicing and its ops."""
    B, C, H, W = x.shape
    x_j = x - x
    x_rolled = torch.cat([x[:, :, -H // 2:, :], x[:, :, :-H // 2, :]], dim=2)
    x_rolled = torch.cat([x_rolled[:, :, :, -W // 2:],
                          x_rolled[:, :, :, :-W // 2]], dim=3)
    norm = torch.norm((x - x_rolled), p=1, dim=1, keepdim=True)
    mean = torch.mean(norm, dim=[2, 3], keepdim=True)
    std = torch.std(norm, dim=[2, 3], keepdim=True)
    for i in range(0, H, K):
        x_rolled = torch.cat([x[:, :, -i:, :], x[:, :, :-i, :]], dim=2)
        dist = torch.norm((x - x_rolled), p=1, dim=1, keepdim=True)
        mask = torch.where(dist < mean - std, 1, 0)
        x_j = torch.max(x_j, (x_rolled - x) * mask)
    for j in range(0, W, K):
        x_rolled = torch.cat([x[:, :, :, -j:], x[:, :, :, :-j]], dim=3)
        dist = torch.norm((x - x_rolled), p=1, dim=1, keepdim=True)
        mask = torch.where(dist < mean - std, 1, 0)
        x_j = torch.max(x_j, (x_rolled - x) * mask)
    return x_j


def loaded(reference, variant, dtype=torch.float32):
    model = GreedyViG(variant).eval()
    model.load_state_dict(backbone_state_dict(reference, variant), strict=True)
    return model.to(dtype)


def relative(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


# ---------------------------------------------------------------- parity
@pytest.mark.parametrize('variant', ['s', 'm'])
def test_parity_with_reference_features(reference, variant):
    """float32 to 1e-4 (relative); float64 to 1e-9, in the training form and
    after switch_to_deploy()."""
    expected = reference.expected(variant, FAMILY)
    _, x = reference.inputs()
    model = loaded(reference, variant)
    with torch.no_grad():
        for out, exp in zip(model(x), expected['features']):
            assert relative(out, exp) <= 1e-4
    model = loaded(reference, variant, torch.float64)
    with torch.no_grad():
        for out, exp in zip(model(x.double()), expected['features64']):
            assert relative(out, exp) <= 1e-9
        model.switch_to_deploy()
        deployed = model(x.double())
    assert not any(isinstance(m, _BatchNorm) for m in model.modules())
    assert not any('layer_scale' in k or 'cpe.pe' in k
                   for k in model.state_dict())
    for out, exp in zip(deployed, expected['features64']):
        assert relative(out, exp) <= 1e-9


@pytest.mark.parametrize('variant,params', [('s', 11.98), ('m', 21.93)])
def test_classifier_parity_and_params(reference, variant, params):
    from mmpretrain.registry import MODELS

    from mvig2_mm.models import imagenet_classifier_cfg
    from mvig2_mm.models.utils import switch_to_deploy
    model = MODELS.build(imagenet_classifier_cfg(variant,
                                                 backbone='GreedyViG'))
    model.load_state_dict(reference.state_dict(variant, FAMILY), strict=True)
    model.eval()
    assert sum(p.numel() for p in model.parameters()) / 1e6 == \
        pytest.approx(params, abs=0.005)
    expected = reference.expected(variant, FAMILY)
    x, _ = reference.inputs()
    with torch.no_grad():
        assert relative(model(x, mode='tensor'), expected['logits']) <= 1e-4
        model.double()
        assert relative(model(x.double(), mode='tensor'),
                        expected['logits64']) <= 1e-9
        switch_to_deploy(model)
        assert relative(model(x.double(), mode='tensor'),
                        expected['logits64']) <= 1e-9


# ------------------------------------------------------------ the graph
@pytest.mark.parametrize('hw', [(8, 8), (7, 12), (5, 3), (1, 1), (2, 9),
                                (16, 24)])
@pytest.mark.parametrize('hop', [1, 2, 4, 8])
def test_dynamic_axial_graph_is_the_reference_computation(hw, hop):
    x = torch.randn(2, 6, *hw)
    assert torch.equal(dynamic_axial_features(x, hop), reference_dagc(x, hop))


def test_masks_carry_no_gradient():
    """Gradients are what the reference's autograd gives."""
    x = torch.randn(2, 5, 12, 10, dtype=torch.float64, requires_grad=True)
    ours = torch.autograd.grad(dynamic_axial_features(x, 2).sum(), x)[0]
    theirs = torch.autograd.grad(reference_dagc(x, 2).sum(), x)[0]
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    assert ours.abs().sum() > 0


def test_threshold_is_per_image():
    torch.manual_seed(0)
    a, b = torch.randn(1, 4, 9, 11), 5 * torch.randn(1, 4, 9, 11)
    both = dynamic_axial_features(torch.cat([a, b]), 2)
    assert torch.equal(both[:1], dynamic_axial_features(a, 2))
    assert torch.equal(both[1:], dynamic_axial_features(b, 2))


@pytest.mark.parametrize('hw', [(32, 32), (40, 72), (97, 131), (50, 61)])
def test_odd_sizes_and_batch_two_deploy_equals_training_form(hw):
    """At sizes that are not multiples of 32, maps smaller than K, and batch
    2, the deploy form equals the training form in float64."""
    torch.manual_seed(0)
    model = GreedyViG('s', layer_scale_init_value=0.5).double()
    model.init_weights()
    model.train()
    model(torch.randn(2, 3, 64, 64, dtype=torch.float64))  # BN statistics
    model.eval()
    x = torch.randn(2, 3, *hw, dtype=torch.float64)
    with torch.no_grad():
        before = model(x)
        model.switch_to_deploy()
        after = model(x)
    for a, b in zip(after, before):
        assert a.shape == b.shape and torch.isfinite(a).all()
        assert relative(a, b) <= 1e-9


def test_captured_graph_is_right_for_other_sizes():
    """A traced graph (ONNX's TorchScript exporter traces) computes the
    shifts, their count and the half-way partners from the size."""
    traced = torch.jit.trace(lambda t: dynamic_axial_features(t, 2),
                             torch.randn(1, 3, 8, 8, dtype=torch.float64))
    for hw in [(8, 8), (9, 12), (3, 2), (1, 5)]:
        x = torch.randn(2, 3, *hw, dtype=torch.float64)
        torch.testing.assert_close(traced(x), reference_dagc(x, 2),
                                   rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------ layout
def test_layout_and_drop_path():
    model = GreedyViG('s', drop_path_rate=0.1,
                      drop_path_schedule='reference')
    assert model.channels == [48, 96, 192, 384]
    # graph blocks in every stage, stage 0 too
    assert all(any(type(b).__name__ == 'MGCBlock' for b in stage)
               for stage in model.stages)
    rates = [getattr(b.drop_path, 'drop_prob', 0.) for stage in model.stages
             for b in stage if hasattr(b, 'drop_path')]
    # the reference advances after every block: linear
    assert rates == pytest.approx(torch.linspace(0, 0.1, 20).tolist())
    assert not isinstance(MobileViGv2('ti'), GreedyViG)
    with torch.no_grad():
        outs = model.eval()(torch.randn(1, 3, 224, 224))
    assert [tuple(o.shape[1:]) for o in outs] == [
        (48, 56, 56), (96, 28, 28), (192, 14, 14), (384, 7, 7)]
