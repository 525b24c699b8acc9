from .checkpoint_converter import (convert_checkpoint,
                                   convert_reference_state_dict,
                                   is_reference_layout)
from .checkpoint_loading import (CheckpointMismatchError, check_checkpoint,
                                 load_checkpoint_strictly, load_pretrained)
from .fusion import (FusedConvModule, capturing_graph, fuse_conv_bn_weights,
                     fuse_conv_module, switch_to_deploy, use_fused_kernels)

__all__ = [
    'convert_checkpoint', 'convert_reference_state_dict',
    'is_reference_layout', 'CheckpointMismatchError', 'check_checkpoint',
    'load_checkpoint_strictly', 'load_pretrained', 'fuse_conv_bn_weights',
    'fuse_conv_module', 'FusedConvModule', 'capturing_graph', 'switch_to_deploy',
    'use_fused_kernels'
]
