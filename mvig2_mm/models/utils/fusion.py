"""Folding norm layers into the convolutions before them, and the fused
convolution kernels the folded (deploy) form runs on."""
import warnings
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_weights as _fuse_conv_bn

# oneDNN's fused convolution (conv + bias + activation, or + a tensor, in one
# pass): the op PyTorch's own CPU compiler (inductor) emits. Absent from
# builds without oneDNN.
_CONV_POINTWISE = getattr(torch.ops.mkldnn, '_convolution_pointwise', None)
# (activation type, its ``approximate``) -> (oneDNN post-op, algorithm)
_POST_OPS = {
    (nn.GELU, 'none'): ('gelu', 'none'),
    (nn.GELU, 'tanh'): ('gelu', 'tanh'),
    (nn.ReLU, None): ('relu', None),
}
_fused_kernels_work = True  # set to False if this torch's op misbehaves
_is_compiling = getattr(torch.compiler, 'is_compiling', lambda: False)


def capturing_graph() -> bool:
    """Whether the code runs to record a graph rather than to compute:
    tracing, scripting, ``torch.compile`` or ``torch.export``. Covers both
    ONNX exporters (the TorchScript-based one traces; the dynamo-based one
    runs torch.export, which sets the compiling flag)."""
    return (torch.jit.is_tracing() or torch.jit.is_scripting()
            or _is_compiling())


def use_fused_kernels(x: torch.Tensor) -> bool:
    """Whether :class:`FusedConvModule` runs ``x`` on oneDNN's fused
    convolutions: float32 CPU inference (no gradients), oneDNN enabled, not
    while tracing, exporting or compiling."""
    # cheapest tests first: this runs before every convolution
    return (_fused_kernels_work and not torch.is_grad_enabled()
            and x.is_cpu and x.dtype == torch.float32
            and x.dim() == 4 and _CONV_POINTWISE is not None
            and torch.backends.mkldnn.enabled and not capturing_graph())


def _tensor_key(tensor: Optional[torch.Tensor]) -> tuple:
    """Changes whenever ``tensor`` is replaced or modified in place."""
    if tensor is None:
        return ()
    # inference tensors (made under torch.inference_mode) have no version
    # counter; they cannot be modified outside inference mode
    version = None if tensor.is_inference() else tensor._version
    return tensor.data_ptr(), version


class FusedConvModule(ConvModule):
    """A norm-free ``ConvModule`` (the deploy form) that runs on fused kernels.

    Same parameters, state dict and results as ``ConvModule`` with
    ``norm_cfg=None``. In float32 CPU inference (see
    :func:`use_fused_kernels`) the conv, its bias and its activation (GELU,
    ReLU or none) are one oneDNN primitive, and :meth:`forward_add` adds a
    residual in that same pass; these kernels are fastest on channels-last
    tensors. Their weight is kept packed in oneDNN's blocked layout (a copy
    outside the state dict, made on first use and again whenever the weight
    changes) instead of being re-laid-out on every call. Otherwise
    (gradients, CUDA, other dtypes, tracing for ONNX or TorchScript) it runs
    the plain ``ConvModule`` ops.
    """

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop('_kernel', None)  # opaque oneDNN tensor: not copyable
        return state

    def _post_op(self) -> Optional[Tuple[str, Optional[str]]]:
        """The oneDNN post-op of the activation; None if it has none."""
        if not self.with_activation:
            return 'none', None
        act = self.activate
        return _POST_OPS.get((type(act), getattr(act, 'approximate', None)))

    def _kernel_args(self, x: torch.Tensor) -> Optional[tuple]:
        """The fused kernel's arguments but the input: (packed weight, bias,
        padding, stride, dilation, groups, post-op, its algorithm), or None
        if this module has no fused form.

        Worked out once, and again only when the weight or bias changes: the
        conv itself runs at kernel speed, so Python time per call matters
        (hence the direct ``_modules``/``_parameters`` lookups). The weight
        is packed for the first input's shape; it serves any shape.
        """
        params = self._modules['conv']._parameters
        weight, bias = params['weight'], params['bias']
        key = (_tensor_key(weight), _tensor_key(bias))
        cached = self.__dict__.get('_kernel')
        if cached is not None and cached[0] == key:
            return cached[1]
        conv, args, post_op = self.conv, None, self._post_op()
        if (not self.with_norm and not self.with_explicit_padding
                and self.order[0] == 'conv' and post_op is not None):
            packed = torch._C._nn.mkldnn_reorder_conv2d_weight(
                weight.detach().to_mkldnn(), list(conv.padding),
                list(conv.stride), list(conv.dilation), conv.groups,
                list(x.shape))
            args = (packed, bias, list(conv.padding), list(conv.stride),
                    list(conv.dilation), conv.groups, *post_op)
        self.__dict__['_kernel'] = (key, args)
        return args

    def _fused(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None
               ) -> Optional[torch.Tensor]:
        """The fused kernel's result, or None where it cannot run."""
        global _fused_kernels_work
        try:
            args = self._kernel_args(x)
            if args is None:
                return None
            if residual is None:
                packed, bias, padding, stride, dilation, groups, attr, \
                    algorithm = args
                return _CONV_POINTWISE(x, packed, bias, padding, stride,
                                       dilation, groups, attr, [], algorithm)
            return _CONV_POINTWISE.binary(x, residual, *args[:6], 'add', None,
                                          None, [], None)
        except (RuntimeError, TypeError) as e:  # e.g. another op signature
            _fused_kernels_work = False
            warnings.warn(f'oneDNN fused convolution failed ({e}); running '
                          f'the plain PyTorch ops from now on')
            return None

    def forward(self, x: torch.Tensor, activate: bool = True,
                norm: bool = True) -> torch.Tensor:
        if activate and use_fused_kernels(x):
            out = self._fused(x)
            if out is not None:
                return out
        return super().forward(x, activate, norm)

    def forward_add(self, x: torch.Tensor,
                    residual: torch.Tensor) -> torch.Tensor:
        """``residual + self(x)``, in one pass when fused (no activation)."""
        if not self.with_activation and use_fused_kernels(x):
            out = self._fused(x, residual)
            if out is not None:
                return out
        return residual + self(x)


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
    """Return a norm-free :class:`FusedConvModule` equal to ``module`` in eval
    mode.

    Args:
        module (ConvModule): A conv -> BatchNorm (-> activation) module.

    Returns:
        FusedConvModule: A new module holding one conv with bias and the same
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
    fused = FusedConvModule(
        conv.in_channels, conv.out_channels, conv.kernel_size,
        stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
        groups=conv.groups, bias=True, norm_cfg=None, act_cfg=module.act_cfg,
        order=module.order)
    weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, norm)
    fused.conv.weight.copy_(weight)
    fused.conv.bias.copy_(bias)
    return fused.to(conv.weight.device)


def switch_to_deploy(model: nn.Module) -> nn.Module:
    """Convert ``model`` to its inference form in place: call
    ``switch_to_deploy()`` on every submodule that has one and is not
    deployed yet (MobileViGv2 backbone and head, MobileOne, RepVGG, ...).

    Returns:
        nn.Module: ``model`` itself.
    """
    for module in list(model.modules()):
        if hasattr(module, 'switch_to_deploy') and not getattr(
                module, 'deploy', False):
            module.switch_to_deploy()
    return model
