from .deploy import switch_to_deploy
from .fusion import fold_conv_module, fuse_conv_bn, scale_conv
from .graph_capture import capturing_graph

__all__ = [
    'switch_to_deploy', 'fold_conv_module', 'fuse_conv_bn', 'scale_conv',
    'capturing_graph'
]
