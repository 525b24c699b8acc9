"""Folding norm layers into the convolutions before them."""
import torch
from mmcv.cnn import ConvModule
from torch.nn.modules.batchnorm import _BatchNorm


@torch.no_grad()
def fuse_conv_bn_weights(conv_weight: torch.Tensor, conv_bias: torch.Tensor,
                         bn: _BatchNorm) -> tuple:
    """Return the (weight, bias) of one conv equal to ``bn(conv(x))`` in eval
    mode."""
    std = (bn.running_var + bn.eps).sqrt()
    scale = bn.weight / std if bn.affine else 1 / std
    shift = bn.bias if bn.affine else torch.zeros_like(std)
    weight = conv_weight * scale.reshape(-1, *([1] * (conv_weight.dim() - 1)))
    if conv_bias is None:
        conv_bias = torch.zeros_like(bn.running_mean)
    bias = (conv_bias - bn.running_mean) * scale + shift
    return weight, bias


@torch.no_grad()
def fuse_conv_module(module: ConvModule) -> ConvModule:
    """Return a norm-free ``ConvModule`` equal to ``module`` in eval mode.

    Args:
        module (ConvModule): A conv -> BatchNorm (-> activation) module.

    Returns:
        ConvModule: A new module holding one conv with bias and the same
        activation. ``module`` itself is left unchanged.
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
    fused = ConvModule(
        conv.in_channels, conv.out_channels, conv.kernel_size,
        stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
        groups=conv.groups, bias=True, norm_cfg=None, act_cfg=module.act_cfg,
        order=module.order)
    weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, norm)
    fused.conv.weight.copy_(weight)
    fused.conv.bias.copy_(bias)
    return fused.to(conv.weight.device)
