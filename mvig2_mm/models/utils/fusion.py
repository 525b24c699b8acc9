"""Folding norm layers into the convolutions before them: the arithmetic of
the deploy (inference) form.

The folded convolutions are :class:`DeployConvModule`: plain PyTorch ops.
The fused-kernel fast path for CPU inference is a separate piece,
:mod:`~mvig2_mm.models.utils.fused_kernels`.
"""
from typing import Optional

import torch
from mmcv.cnn import ConvModule
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_weights as _fuse_conv_bn


class DeployConvModule(ConvModule):
    """A norm-free ``ConvModule`` (the deploy form) that can add a residual
    to its output: ``forward(x, residual)`` is ``residual + self(x)``.

    A folded residual branch ends in one of these, so that an implementation
    may compute the conv and the sum in one pass
    (:class:`~mvig2_mm.models.utils.fused_kernels.FusedConvModule` does).
    Same parameters and state dict as ``ConvModule`` with ``norm_cfg=None``.
    """

    def forward(self, x: torch.Tensor,
                residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        out = super().forward(x)
        return out if residual is None else residual + out


@torch.no_grad()
def fuse_conv_bn_weights(conv_weight: torch.Tensor, conv_bias: torch.Tensor,
                         bn: _BatchNorm) -> tuple:
    """Return the (weight, bias) of one conv equal to ``bn(conv(x))`` in eval
    mode (PyTorch's own fusion, given the norm module)."""
    weight, bias = _fuse_conv_bn(conv_weight, conv_bias, bn.running_mean,
                                 bn.running_var, bn.eps, bn.weight, bn.bias)
    return weight.data, bias.data


@torch.no_grad()
def fuse_conv_module(module: ConvModule) -> ConvModule:
    """Return a norm-free :class:`DeployConvModule` equal to ``module`` in
    eval mode.

    Args:
        module (ConvModule): A conv -> BatchNorm (-> activation) module.

    Returns:
        DeployConvModule: A new module holding one conv with bias and the
        same activation. ``module`` itself is left unchanged.
    """
    if not module.with_norm:
        return module
    norm = module.norm
    if not isinstance(norm, _BatchNorm):
        raise TypeError(f'Only BatchNorm-type layers can be folded into a '
                        f'conv for deploy, got {type(norm).__name__}')
    if module.order[:2] != ('conv', 'norm'):
        raise ValueError(f'Cannot fold a norm applied before its conv '
                         f'(order {module.order})')
    conv = module.conv
    fused = DeployConvModule(
        conv.in_channels, conv.out_channels, conv.kernel_size,
        stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
        groups=conv.groups, bias=True, norm_cfg=None, act_cfg=module.act_cfg,
        order=module.order)
    weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, norm)
    fused.conv.weight.copy_(weight)
    fused.conv.bias.copy_(bias)
    return fused.to(conv.weight.device)
