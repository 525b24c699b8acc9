from .checkpoint_converter import convert_reference_state_dict, is_reference_layout
from .checkpoint_loading import CheckpointMismatchError, load_pretrained
from .fusion import (FusedConvModule, capturing_graph, fuse_conv_bn_weights,
                     fuse_conv_module, switch_to_deploy, use_fused_kernels)

__all__ = [
    'convert_reference_state_dict', 'is_reference_layout',
    'CheckpointMismatchError', 'load_pretrained', 'fuse_conv_bn_weights',
    'fuse_conv_module', 'FusedConvModule', 'capturing_graph', 'switch_to_deploy',
    'use_fused_kernels'
]
