"""The fused-kernel fast path of the deploy form, for float32 CPU inference.

The deploy form's convolutions (:class:`~.fusion.DeployConvModule`) are plain
PyTorch ops. On CPU, oneDNN can run a convolution, its bias, its activation
(GELU or ReLU) and a residual sum as one primitive: the op PyTorch's own CPU
compiler (inductor) emits. This module is the only place that knows about
it. One switch, :func:`enable_fused_kernels`, turns it on or off for a model;
:func:`~.deploy.switch_to_deploy` and the MobileViG backbones' and head's
deploy form turn it on.

Where it cannot run (gradients, CUDA, another dtype, tracing, exporting or
compiling, a torch built without oneDNN) the plain ops run; if the op fails
on a torch whose signature differs, the module warns once and runs the plain
ops from then on. Results equal the plain ops' to float rounding.
"""
import warnings
from typing import Optional, Tuple

import torch
import torch.nn as nn

from .fusion import DeployConvModule
from .graph_capture import capturing_graph

# oneDNN's fused convolution (conv + bias + activation, or + a tensor, in one
# pass). Absent from builds without oneDNN.
_CONV_POINTWISE = getattr(torch.ops.mkldnn, '_convolution_pointwise', None)
# (activation type, its ``approximate``) -> (oneDNN post-op, algorithm)
_POST_OPS = {
    (nn.GELU, 'none'): ('gelu', 'none'),
    (nn.GELU, 'tanh'): ('gelu', 'tanh'),
    (nn.ReLU, None): ('relu', None),
}


def use_fused_kernels(x: torch.Tensor) -> bool:
    """Whether the fused kernels can run on ``x``: float32 CPU inference (no
    gradients), oneDNN enabled, not while tracing, exporting or compiling."""
    # cheapest tests first: this runs before every convolution
    return (not torch.is_grad_enabled() and x.is_cpu
            and x.dtype == torch.float32 and x.dim() == 4
            and _CONV_POINTWISE is not None
            and torch.backends.mkldnn.enabled and not capturing_graph())


def _tensor_key(tensor: Optional[torch.Tensor]) -> tuple:
    """Changes whenever ``tensor`` is replaced or modified in place."""
    if tensor is None:
        return ()
    # inference tensors (made under torch.inference_mode) have no version
    # counter; they cannot be modified outside inference mode
    version = None if tensor.is_inference() else tensor._version
    return tensor.data_ptr(), version


class FusedConvModule(DeployConvModule):
    """A :class:`DeployConvModule` that runs on oneDNN's fused kernels.

    Same parameters, state dict and results. In float32 CPU inference (see
    :func:`use_fused_kernels`) the conv, its bias, its activation and the
    residual of ``forward(x, residual)`` are one oneDNN primitive; these
    kernels are fastest on channels-last tensors. The weight is kept packed
    in oneDNN's blocked layout (a copy outside the state dict, made on first
    use and again whenever the weight changes).
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
                and self.order[0] == 'conv' and post_op is not None
                and not self.__dict__.get('_kernel_failed')):
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
            self.__dict__['_kernel_failed'] = True
            self.__dict__.pop('_kernel', None)
            warnings.warn(f'oneDNN fused convolution failed ({e}); running '
                          f'the plain PyTorch ops instead')
            return None

    def forward(self, x: torch.Tensor,
                residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        if use_fused_kernels(x) and (residual is None
                                     or not self.with_activation):
            out = self._fused(x, residual)
            if out is not None:
                return out
        return super().forward(x, residual)


def _channels_last(module: nn.Module, args: tuple) -> Optional[tuple]:
    """Forward pre-hook: the fused kernels are fastest on channels-last
    data, so an image batch enters in that memory format."""
    if args and isinstance(args[0], torch.Tensor) and use_fused_kernels(
            args[0]):
        return (args[0].contiguous(memory_format=torch.channels_last),
                *args[1:])
    return None


def enable_fused_kernels(model: nn.Module, enabled: bool = True
                         ) -> nn.Module:
    """Run every :class:`DeployConvModule` of ``model`` on the fused kernels
    (``enabled=True``) or on the plain ops (``False``), in place.

    Parameters, state dict and results are unchanged; only the class of the
    folded convolutions changes. With ``enabled`` the input of the model and
    of each MobileViG backbone inside it (a module with ``arch_settings``)
    also enters channels-last when the fused kernels run.

    Args:
        model (nn.Module): Any model; modules of other types are left alone.
        enabled (bool): Turn the fast path on or off. Defaults to True.

    Returns:
        nn.Module: ``model`` itself.
    """
    for module in model.modules():
        if isinstance(module, DeployConvModule):
            module.__class__ = FusedConvModule if enabled else \
                DeployConvModule
            module.__dict__.pop('_kernel', None)
        if module is model or hasattr(module, 'arch_settings'):
            # the model's input, and a MobileViG backbone's inside it
            hooks = module._forward_pre_hooks
            for key in [k for k, h in hooks.items() if h is _channels_last]:
                del hooks[key]
            if enabled:
                module.register_forward_pre_hook(_channels_last)
    return model
