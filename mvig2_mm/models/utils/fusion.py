"""The re-parameterisation maths of the deploy (inference) form, and the one
piece of module surgery it needs.

A conv followed by a BatchNorm in eval mode is one conv with another weight
and bias (:func:`fuse_conv_bn`); a per-channel scale after a conv is one conv
too (:func:`scale_conv`). :func:`fold_conv_module` applies both to an mmcv
``ConvModule`` and returns the norm-free ``ConvModule`` of the deploy form.
"""
from typing import Optional, Tuple

import torch
from mmcv.cnn import ConvModule
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_weights

Tensor = torch.Tensor


def fuse_conv_bn(weight: Tensor, bias: Optional[Tensor],
                 bn: _BatchNorm) -> Tuple[Tensor, Tensor]:
    """The (weight, bias) of one conv equal to ``bn(conv(x))`` with ``bn`` in
    eval mode: ``W * s`` and ``(b - mean) * s + beta`` with
    ``s = gamma / sqrt(var + eps)`` (PyTorch's own fusion)."""
    weight, bias = fuse_conv_bn_weights(weight, bias, bn.running_mean,
                                        bn.running_var, bn.eps, bn.weight,
                                        bn.bias)
    return weight.detach(), bias.detach()


def scale_conv(weight: Tensor, bias: Tensor,
               scale: Tensor) -> Tuple[Tensor, Tensor]:
    """The (weight, bias) of one conv equal to ``scale * conv(x)``, with
    ``scale`` one factor per output channel (any shape of C elements)."""
    scale = scale.detach().reshape(-1)
    return weight * scale.reshape(-1, 1, 1, 1), bias * scale


@torch.no_grad()
def fold_conv_module(module: ConvModule,
                     scale: Optional[Tensor] = None) -> ConvModule:
    """The deploy form of a conv -> BatchNorm (-> activation) ``ConvModule``:
    a new norm-free ``ConvModule`` with the same activation, equal to
    ``module`` in eval mode (times ``scale`` per output channel, for a module
    without activation whose output a layer scale multiplies).

    Args:
        module (ConvModule): A conv -> norm (-> activation) module, or an
            already norm-free one (then only ``scale`` is folded).
        scale (Tensor, optional): Per-channel factor applied to the output.

    Returns:
        ConvModule: A new module; ``module`` is left unchanged.
    """
    conv = module.conv
    weight = conv.weight
    bias = conv.bias if conv.bias is not None else torch.zeros(
        conv.out_channels, device=weight.device)
    if module.with_norm:
        if not isinstance(module.norm, _BatchNorm):
            raise TypeError(f'only BatchNorm-type layers can be folded into '
                            f'a conv, got {type(module.norm).__name__}')
        if module.order[:2] != ('conv', 'norm'):
            raise ValueError(f'cannot fold a norm applied before its conv '
                             f'(order {module.order})')
        weight, bias = fuse_conv_bn(weight, bias, module.norm)
    if scale is not None:
        if module.with_activation:
            raise ValueError('a scale after an activation cannot be folded '
                             'into the conv before it')
        weight, bias = scale_conv(weight, bias, scale)
    folded = ConvModule(
        conv.in_channels, conv.out_channels, conv.kernel_size,
        stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
        groups=conv.groups, bias=True, norm_cfg=None, act_cfg=module.act_cfg,
        order=module.order).to(weight.device, weight.dtype)
    folded.conv.weight.copy_(weight)
    folded.conv.bias.copy_(bias)
    return folded
