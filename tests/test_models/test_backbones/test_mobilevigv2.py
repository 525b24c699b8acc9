import copy

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mvig2_mm.errors import ConfigError
from mvig2_mm.models import MobileViGv2
from mvig2_mm.models.backbones.base import shifted, shifted_in_graph
from mvig2_mm.models.backbones.mobilevigv2 import (InvertedResidual, MGCBlock,
                                                   max_relative_features)
from mvig2_mm.weights import convert_reference_state_dict


def backbone_state_dict(reference, variant):
    converted = convert_reference_state_dict(reference.state_dict(variant))
    return {k[len('backbone.'):]: v for k, v in converted.items()
            if k.startswith('backbone.')}


def reference_graph_features(x, K):
    """The reference's x_j (MRConv4d), written with its slicing."""
    x_j = x - x
    x_j = torch.max(x_j, torch.cat([x[:, :, -K:], x[:, :, :-K]], 2) - x)
    x_j = torch.max(x_j, torch.cat([x[:, :, K:], x[:, :, :K]], 2) - x)
    x_j = torch.max(x_j, torch.cat([x[..., -K:], x[..., :-K]], 3) - x)
    x_j = torch.max(x_j, torch.cat([x[..., K:], x[..., :K]], 3) - x)
    return x_j


# ---------------------------------------------------------------- parity
@pytest.mark.parametrize('variant', ['ti', 's', 'm'])
def test_parity_with_reference_features(reference, variant):
    model = MobileViGv2(variant).eval()
    model.load_state_dict(backbone_state_dict(reference, variant), strict=True)
    expected = reference.expected(variant)['features']
    _, x = reference.inputs()
    with torch.no_grad():
        outs = model(x)
    assert len(outs) == 4
    for out, exp in zip(outs, expected):
        torch.testing.assert_close(out, exp, atol=1e-4, rtol=1e-4)

    model.switch_to_deploy()
    assert model.deploy
    assert not any(isinstance(m, _BatchNorm) for m in model.modules())
    assert not any('layer_scale' in n for n, _ in model.named_parameters())
    assert not any(n.endswith('cpe.pe.weight') for n in model.state_dict())
    with torch.no_grad():
        deployed = model(x)
    for out, exp in zip(deployed, expected):
        torch.testing.assert_close(out, exp, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('hw,hop', [((5, 9), 8), ((8, 8), 8), ((9, 3), 2),
                                    ((16, 24), 8), ((4, 6), 2), ((1, 7), 2),
                                    ((10, 10), 0)])
def test_graph_shift_matches_reference_slicing(hw, hop):
    x = torch.randn(2, 3, *hw)
    expected = reference_graph_features(x, hop)
    assert torch.equal(max_relative_features(x, hop), expected)


@pytest.mark.parametrize('size', [1, 2, 5, 7, 8, 9, 16, 25])
@pytest.mark.parametrize('shift', [-8, -2, 0, 1, 2, 4, 8])
def test_shift_in_a_captured_graph_equals_the_eager_shift(size, shift):
    """The forms of the graph convolutions' shift equal the eager one
    (torch.roll, or no shift along an axis not longer than it): the slices
    of a graph of a fixed size, and the gather a traced graph computes from
    the size (traced at another size)."""
    x = torch.randn(2, 3, size, size + 3)
    for dim in (2, 3):
        assert torch.equal(shifted_in_graph(x, shift, dim),
                           shifted(x, shift, dim))
        traced = torch.jit.trace(
            lambda t, dim=dim: shifted_in_graph(t, shift, dim),
            torch.randn(1, 3, 12, 11))
        assert torch.equal(traced(x), shifted(x, shift, dim))
    expected = x if abs(shift) >= size else torch.roll(x, shift, 2)
    assert torch.equal(shifted(x, shift, 2), expected)


def test_graph_shift_does_not_wrap_when_hop_exceeds_size():
    # 5 rows with hop 8: torch.roll would shift by 3; the reference does not
    # shift at all, so only the width neighbours (hop 8 < 9) contribute.
    x = torch.randn(1, 1, 5, 9)
    only_width = torch.relu(torch.maximum(torch.roll(x, 8, 3),
                                          torch.roll(x, -8, 3)) - x)
    assert torch.equal(max_relative_features(x, 8), only_width)
    assert torch.count_nonzero(max_relative_features(torch.randn(1, 1, 4, 4),
                                                     8)) == 0


def test_deploy_state_dict_round_trip(reference, tmp_path):
    model = MobileViGv2('ti').eval()
    model.load_state_dict(backbone_state_dict(reference, 'ti'))
    model.switch_to_deploy()
    path = tmp_path / 'deploy.pth'
    torch.save(model.state_dict(), path)

    fresh = MobileViGv2('ti', deploy=True).eval()
    fresh.load_state_dict(torch.load(path, weights_only=True), strict=True)
    x = torch.randn(1, 3, 96, 64)
    with torch.no_grad():
        for a, b in zip(model(x), fresh(x)):
            assert torch.equal(a, b)


# ------------------------------------------ shapes (see test_base.py too)
def test_out_indices_with_negatives():
    model = MobileViGv2('ti', out_indices=(-1, 1)).eval()
    assert model.out_indices == (3, 1)
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [64, 256]  # in stage order
    outs = MobileViGv2('ti', out_indices=2).eval()(torch.randn(1, 3, 64, 64))
    assert len(outs) == 1 and outs[0].shape[1] == 128


def test_custom_arch_dict():
    arch = dict(channels=[16, 32, 48], ir_blocks=[1, 1, 1],
                mgc_blocks=[0, 1, 1], hops=[0, 4, 2])
    model = MobileViGv2(arch, out_indices=(0, 1, 2)).eval()
    outs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape[1:]) for o in outs] == [(16, 16, 16), (32, 8, 8),
                                                  (48, 4, 4)]


# ------------------------------------------------------------ training API
def test_frozen_stages():
    model = MobileViGv2('ti', frozen_stages=2)
    model.train()
    frozen = [model.stem, model.stages[0], model.stages[1]]
    for module in frozen:
        assert not module.training
        assert all(not p.requires_grad for p in module.parameters())
        assert all(not m.training for m in module.modules()
                   if isinstance(m, _BatchNorm))
    for module in model.stages[2:]:
        assert module.training
        assert all(p.requires_grad for p in module.parameters())

    stem_only = MobileViGv2('ti', frozen_stages=0).train()
    assert not any(p.requires_grad for p in stem_only.stem.parameters())
    assert all(p.requires_grad for p in stem_only.stages.parameters())


def test_norm_eval():
    model = MobileViGv2('ti', norm_eval=True)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    assert model.stages[3][-1].ffn.training
    stats = bns[-1].running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(bns[-1].running_mean, stats)

    model = MobileViGv2('ti', norm_eval=False).train()
    assert all(m.training for m in model.modules()
               if isinstance(m, _BatchNorm))


def test_drop_path_rates_linear_over_all_blocks():
    model = MobileViGv2('ti', drop_path_rate=0.2)
    blocks = [m for m in model.modules()
              if isinstance(m, (InvertedResidual, MGCBlock))]
    assert len(blocks) == 18  # 12 inverted residuals + 6 MGC
    rates = [getattr(b.drop_path, 'drop_prob', 0.) for b in blocks]
    expected = torch.linspace(0, 0.2, 18).tolist()
    assert rates == pytest.approx(expected)
    assert rates[-1] == pytest.approx(0.2)

    # drop path is active in training (different outputs run to run) only
    model.init_weights()
    model.train()
    x = torch.randn(1, 3, 64, 64)
    torch.manual_seed(0)
    a = model(x)[-1]
    torch.manual_seed(1)
    b = model(x)[-1]
    assert not torch.allclose(a, b)
    model.eval()
    assert torch.equal(model(x)[-1], model(x)[-1])


def test_reference_drop_path_schedule():
    """The reference's rates (e.g. detection/mobilevigv2_backbone.py:
    349-366): linear over all 18 blocks, the index advanced after MGC
    blocks only, so each inverted residual takes the rate of the next MGC
    block and the last block ends at 5/17 of the rate."""
    model = MobileViGv2('ti', drop_path_rate=0.2,
                        drop_path_schedule='reference')
    rates = [getattr(b.drop_path, 'drop_prob', 0.) for b in model.modules()
             if isinstance(b, (InvertedResidual, MGCBlock))]
    step = 0.2 / 17
    expected = ([0.] * 2 + [0.] * 2 + [0., step]  # stage 0; 1: IR, IR, MGCs
                + [2 * step] * 6 + [2 * step, 3 * step]  # stage 2
                + [4 * step] * 2 + [4 * step, 5 * step])  # stage 3
    assert rates == pytest.approx(expected)
    with pytest.raises(ValueError, match="drop_path_schedule must be "
                       "'linear' or 'reference', got 'cosine'"):
        MobileViGv2('ti', drop_path_schedule='cosine')


def test_init_weights_changes_weights():
    model = MobileViGv2('ti')
    before = copy.deepcopy(model.state_dict())
    model.init_weights()
    after = model.state_dict()
    changed = [k for k in before if k.endswith('conv.weight')
               and not torch.equal(before[k], after[k])]
    assert len(changed) == sum(k.endswith('conv.weight') for k in before)
    biases = [v for k, v in after.items() if k.endswith('conv.bias')]
    assert all(torch.count_nonzero(b) == 0 for b in biases)
    # reference init: kaiming normal, fan_in, gain sqrt(2)
    w = after['stages.3.0.conv.weight']
    expected_std = (2 / (w.shape[1] * 9)) ** 0.5
    assert w.std().item() == pytest.approx(expected_std, rel=0.05)


def test_gradients_reach_every_parameter():
    model = MobileViGv2('ti', layer_scale_init_value=0.5)
    model.init_weights()
    model.train()
    sum(o.mean() for o in model(torch.randn(2, 3, 64, 96))).backward()
    no_grad = [n for n, p in model.named_parameters()
               if p.grad is None or torch.count_nonzero(p.grad) == 0]
    assert not no_grad, no_grad


# ------------------------------------------------------------ errors
def test_unknown_arch():
    with pytest.raises(ConfigError, match=r"Unavailable arch 'xl'.*'b', 'm', "
                                          r"'s', 'ti'"):
        MobileViGv2('xl')


def test_no_norm_is_an_error_not_the_deploy_form():
    """The deploy form is asked for with deploy=True; norm_cfg=None does not
    silently build it."""
    with pytest.raises(ConfigError, match=r'norm_cfg must be a BatchNorm '
                       r'config .*deploy=True'):
        MobileViGv2('ti', norm_cfg=None)


def test_incomplete_arch_dict():
    with pytest.raises(ValueError, match=r"missing \['hops', 'mgc_blocks'\]"):
        MobileViGv2(dict(channels=[32, 64], ir_blocks=[1, 1]))
    with pytest.raises(ValueError, match='one value per stage'):
        MobileViGv2(dict(channels=[32, 64], ir_blocks=[1, 1],
                         mgc_blocks=[0, 1], hops=[0, 8, 4]))


@pytest.mark.parametrize('bad', [4, -5, (0, 7), [], 'all', (1.5,)])
def test_bad_out_indices(bad):
    with pytest.raises((ValueError, TypeError), match='out_indices'):
        MobileViGv2('ti', out_indices=bad)


@pytest.mark.parametrize('bad', [-2, 5])
def test_frozen_stages_out_of_range(bad):
    with pytest.raises(ValueError,
                       match=r'frozen_stages must be in \[-1, 4\]'):
        MobileViGv2('ti', frozen_stages=bad)


def test_bad_input_rank():
    with pytest.raises(ValueError, match=r'expects an \(N, C, H, W\) tensor'):
        MobileViGv2('ti')(torch.randn(3, 64, 64))
