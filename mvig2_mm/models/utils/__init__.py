from .deploy import switch_to_deploy
from .fused_kernels import (FusedConvModule, enable_fused_kernels,
                            use_fused_kernels)
from .fusion import DeployConvModule, fuse_conv_bn_weights, fuse_conv_module
from .graph_capture import capturing_graph

__all__ = [
    'switch_to_deploy', 'FusedConvModule', 'enable_fused_kernels',
    'use_fused_kernels', 'DeployConvModule', 'fuse_conv_bn_weights',
    'fuse_conv_module', 'capturing_graph'
]
