"""Folding norms and layer scales into convs: the maths of the deploy form,
and the deploy form itself (plain PyTorch, the training form's outputs)."""
import warnings

import pytest
import torch
from mmcv.cnn import ConvModule

from mvig2_mm.models import MobileViG, MobileViGv2
from mvig2_mm.models.utils import (fold_conv_module, fuse_conv_bn, scale_conv,
                                   switch_to_deploy)


def conv_bn(act_cfg, **kwargs):
    with warnings.catch_warnings():  # conv bias before a norm: on purpose
        warnings.simplefilter('ignore', UserWarning)
        module = ConvModule(8, 16, 3, padding=1, bias=True,
                            norm_cfg=dict(type='BN'), act_cfg=act_cfg,
                            **kwargs)
    with torch.no_grad():
        module.norm.running_mean.uniform_(-1, 1)
        module.norm.running_var.uniform_(0.5, 2)
        module.norm.weight.uniform_(0.5, 2)
        module.norm.bias.uniform_(-1, 1)
    return module.eval()


def test_fuse_conv_bn_and_scale_conv_maths():
    module = conv_bn(None)
    x = torch.randn(2, 8, 9, 11)
    weight, bias = fuse_conv_bn(module.conv.weight, module.conv.bias,
                                module.norm)
    scale = torch.rand(16, 1, 1) + 0.5
    with torch.no_grad():
        expected = module(x)
        fused = torch.nn.functional.conv2d(x, weight, bias, padding=1)
        torch.testing.assert_close(fused, expected, rtol=1e-5, atol=1e-5)
        weight, bias = scale_conv(weight, bias, scale)
        torch.testing.assert_close(
            torch.nn.functional.conv2d(x, weight, bias, padding=1),
            scale * expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('act_cfg', [dict(type='GELU'), dict(type='ReLU'),
                                     None, dict(type='Sigmoid')])
def test_folded_module_equals_conv_bn(act_cfg):
    module = conv_bn(act_cfg, stride=2)
    folded = fold_conv_module(module)
    assert type(folded) is ConvModule and not folded.with_norm
    assert folded.with_activation == (act_cfg is not None)
    assert set(folded.state_dict()) == {'conv.weight', 'conv.bias'}
    x = torch.randn(2, 8, 13, 10)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), module(x), rtol=1e-5,
                                   atol=1e-5)
    # the deploy form trains like any conv: gradients flow
    folded(x.requires_grad_()).sum().backward()
    assert folded.conv.weight.grad is not None


def test_a_scale_after_an_activation_is_not_folded():
    with pytest.raises(ValueError, match='after an activation'):
        fold_conv_module(conv_bn(dict(type='GELU')), torch.ones(16))


@pytest.mark.parametrize('family', [MobileViGv2, MobileViG])
def test_deploy_form_is_plain_pytorch_with_the_training_layout(family):
    """The deploy form's modules are plain ConvModules and torch modules
    and its outputs have the training form's memory layout and values."""
    torch.manual_seed(0)
    model = family('ti', layer_scale_init_value=0.5)
    model.init_weights()
    model.train()
    model(torch.randn(2, 3, 64, 64))  # non-trivial BN statistics
    model.eval()
    x = torch.randn(2, 3, 97, 131)
    with torch.no_grad():
        expected = model(x)
        model.switch_to_deploy()
        out = model(x)
    packages = {type(m).__module__.split('.')[0] for m in model.modules()}
    assert packages <= {'torch', 'mmcv', 'mvig2_mm'}
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                   for m in model.modules())
    for a, b in zip(out, expected):
        assert a.is_contiguous() and a.stride() == b.stride()
        torch.testing.assert_close(a, b, rtol=1e-5,
                                   atol=1e-5 * b.abs().max().item())
    # built deployed, the model has the same modules and outputs
    built = family('ti', deploy=True).eval()
    built.load_state_dict(model.state_dict())
    assert [type(m) for m in built.modules()] == [
        type(m) for m in model.modules()]
    with torch.no_grad():
        for a, b in zip(built(x), out):
            assert torch.equal(a, b)


def test_switch_to_deploy_converts_a_whole_classifier():
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='MobileViGv2', arch='ti',
                      layer_scale_init_value=0.5),
        head=dict(type='MobileViGv2Head', num_classes=10, in_channels=256,
                  emb_dims=64))).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x, mode='tensor')
        assert switch_to_deploy(model) is model
        assert model.backbone.deploy and model.head.deploy
        switch_to_deploy(model)  # a second call changes nothing
        out = model(x, mode='tensor')
    assert not any('bn' in key or 'layer_scale' in key or 'fc_dist' in key
                   for key in model.state_dict())
    torch.testing.assert_close(out, expected, rtol=1e-4,
                               atol=1e-4 * expected.abs().max().item())
