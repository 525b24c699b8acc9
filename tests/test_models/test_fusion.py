"""Folding norms into convs, and the fused kernels of the deploy form."""
import warnings

import pytest
import torch
from mmcv.cnn import ConvModule

from mvig2_mm.models import MobileViGv2
from mvig2_mm.models.backbones.mobilevigv2 import max_relative_features
from mvig2_mm.models.utils import (DeployConvModule, FusedConvModule,
                                   enable_fused_kernels, fuse_conv_module,
                                   use_fused_kernels)


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


@pytest.mark.parametrize('act_cfg', [dict(type='GELU'), dict(type='ReLU'),
                                     None, dict(type='Sigmoid')])
@pytest.mark.parametrize('channels_last', [False, True])
def test_fused_module_equals_conv_bn(act_cfg, channels_last):
    module = conv_bn(act_cfg, stride=2)
    fused = enable_fused_kernels(fuse_conv_module(module))
    assert isinstance(fused, FusedConvModule) and not fused.with_norm
    assert set(fused.state_dict()) == {'conv.weight', 'conv.bias'}
    x = torch.randn(2, 8, 13, 10)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    residual = torch.randn(2, 16, 7, 5)
    with torch.no_grad():
        expected = module(x)
        torch.testing.assert_close(fused(x), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(fused(x, residual=residual),
                                   expected + residual, rtol=1e-5, atol=1e-5)
    # with gradients the plain ops run, and gradients flow
    out = fused(x.requires_grad_())
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert fused.conv.weight.grad is not None


def test_fused_kernels_only_for_float32_cpu_inference():
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        assert use_fused_kernels(x) == torch.backends.mkldnn.is_available()
        assert not use_fused_kernels(x.double())
        assert not use_fused_kernels(x[0])
    assert not use_fused_kernels(x)  # gradients enabled


def test_deploy_form_fused_equals_plain_ops():
    """The deploy backbone under no_grad (fused kernels, channels-last)
    equals the same module run with the plain ops (gradients enabled)."""
    torch.manual_seed(0)
    model = MobileViGv2('ti', layer_scale_init_value=0.5)
    model.init_weights()
    model.train()
    model(torch.randn(2, 3, 64, 64))  # non-trivial BN statistics
    model.eval()
    model.switch_to_deploy()
    x = torch.randn(2, 3, 97, 131)
    with torch.no_grad():
        fused = model(x)
    plain = model(x)  # gradients enabled: plain PyTorch ops
    for a, b in zip(fused, plain):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b.detach(), rtol=1e-5,
                                   atol=1e-5 * b.abs().max().item())


@pytest.mark.parametrize('hw,hop', [((28, 28), 8), ((5, 9), 8), ((4, 4), 8)])
def test_graph_features_same_with_and_without_autograd(hw, hop):
    x = torch.randn(2, 4, *hw)
    with torch.no_grad():
        no_grad = max_relative_features(x, hop)  # in-place buffers
    with_grad = max_relative_features(x.clone().requires_grad_(), hop)
    assert torch.equal(no_grad, with_grad.detach())


def test_packed_weights_follow_weight_changes_and_copies():
    import copy
    module = enable_fused_kernels(fuse_conv_module(conv_bn(dict(type='GELU'))))
    x = torch.randn(1, 8, 9, 9).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        before = module(x)
        module.conv.weight.mul_(2)  # in place: the packed copy is redone
        after = module(x)
        module.conv.weight.div_(2)
        torch.testing.assert_close(module(x), before)
        # deepcopy and pickling drop the packed copy (not copyable)
        twin = copy.deepcopy(module)
        torch.testing.assert_close(twin(x), before)
    assert not torch.allclose(before, after)
    twin.load_state_dict({k: v * 3 for k, v in module.state_dict().items()})
    with torch.no_grad():
        plain = ConvModule.forward(twin, x)
        torch.testing.assert_close(twin(x), plain)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(),
                    reason='this torch has no oneDNN')
@pytest.mark.parametrize('built_under', ['no_grad', 'inference_mode'])
def test_deploy_form_runs_fused_kernels(built_under):
    """The fused kernels really run (no silent fallback), also for a model
    converted under ``torch.inference_mode`` (its weights are inference
    tensors, which have no version counter)."""
    model = MobileViGv2('ti', out_indices=(3, )).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)[0]
    mode = (torch.inference_mode if built_under == 'inference_mode'
            else torch.no_grad)
    with mode():
        model.switch_to_deploy()
    with warnings.catch_warnings(), mode():
        warnings.simplefilter('error')  # a fallback warns: fail on it
        out = model(x)[0]
    convs = [m for m in model.modules() if isinstance(m, FusedConvModule)]
    assert convs and all(m.__dict__.get('_kernel', (0, None))[1] is not None
                         and not m.__dict__.get('_kernel_failed')
                         for m in convs)
    torch.testing.assert_close(out, expected, rtol=1e-4,
                               atol=1e-4 * expected.abs().max().item())


def test_switch_to_deploy_converts_a_whole_classifier():
    from mmpretrain.registry import MODELS

    from mvig2_mm.models.utils import switch_to_deploy
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


def test_fast_path_is_one_switch_and_equals_the_plain_ops():
    """enable_fused_kernels turns the fast path on and off for a whole
    deploy-form model; the folded convolutions are plain
    DeployConvModules without it, and the outputs agree."""
    torch.manual_seed(0)
    model = MobileViGv2('ti', layer_scale_init_value=0.5).eval()
    model.switch_to_deploy()  # folds, then turns the fast path on
    convs = [m for m in model.modules() if isinstance(m, DeployConvModule)]
    assert convs and all(type(m) is FusedConvModule for m in convs)
    x = torch.randn(1, 3, 97, 131)
    with torch.no_grad():
        fused = model(x)
        enable_fused_kernels(model, False)
        assert all(type(m) is DeployConvModule for m in convs)
        assert not model._forward_pre_hooks  # no channels-last switch
        plain = model(x)
    assert not plain[0].is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(fused, plain):
        torch.testing.assert_close(a, b, rtol=1e-5,
                                   atol=1e-5 * b.abs().max().item())
    enable_fused_kernels(model)
    enable_fused_kernels(model)  # idempotent: one channels-last hook
    assert len(model._forward_pre_hooks) == 1


def test_deploy_built_model_runs_the_fast_path():
    model = MobileViGv2('ti', deploy=True).eval()
    assert all(type(m) is FusedConvModule for m in model.modules()
               if isinstance(m, DeployConvModule))
