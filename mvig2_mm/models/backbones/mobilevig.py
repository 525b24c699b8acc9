"""MobileViG backbone ("MobileViG: Graph-Based Sparse Attention for Mobile
Vision Applications", CVPR Workshops 2023), the predecessor of MobileViGv2.

Numbers follow the reference implementation (``models/mobilevig.py`` of
github.com/SLDGroup/MobileViGv2) exactly. Three local stages of inverted
residual blocks (shared with MobileViGv2, :mod:`.base`) and one global stage
of SVGA blocks: sparse vision graph attention, a max-relative graph
convolution over every K-th row and column, then an FFN.
:mod:`mvig2_mm.weights.converter` maps reference checkpoints onto these
module names.
"""
import re
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS

from ..utils.fusion import fold_conv_module
from ..utils.graph_capture import capturing_graph
from .base import (BlockConfig, GraphConv, InvertedResidual, MobileViGBase,
                   drop_path, every_shift_in_graph)


def svga_features(x: torch.Tensor, hop: int) -> torch.Tensor:
    """Sparse vision graph attention's aggregation (MobileViG):
    ``x_j = max(0, max_i(x - roll_h(x, i)), max_i(x - roll_w(x, i)))`` over
    the shifts ``i = hop, 2 hop, ...`` shorter than the axis: each node is
    connected to every ``hop``-th row above it and column left of it,
    wrapping around.

    Computed as ``relu(x - min_i roll(x, i))``, which equals the reference's
    running maximum bit for bit (the rounding of ``x - a`` is monotonic in
    ``a``). A captured graph takes every shift in one gather
    (:func:`~.base.every_shift_in_graph`, which includes ``x`` itself:
    ``x - x`` is the zero the maximum starts from).

    Args:
        x (Tensor): Features of shape (N, C, H, W).
        hop (int): The graph's step K.

    Returns:
        Tensor: ``x_j`` of the same shape as ``x``.
    """
    if capturing_graph():
        nearest = torch.minimum(every_shift_in_graph(x, hop, 2).amin(2),
                                every_shift_in_graph(x, hop, 3).amin(3))
        return F.relu(x - nearest)
    nearest = x
    for dim in (2, 3):
        for shift in range(hop, x.shape[dim], hop):
            nearest = torch.minimum(nearest, torch.roll(x, shift, dim))
    return F.relu(x - nearest)


torch.fx.wrap('svga_features')  # a call in a torch.fx graph (Tune mode)


class SVGAGraphConv(GraphConv):
    """The graph convolution of SVGA (MRConv4d in the reference):
    ``nn(concat([x, svga_features(x)]))``, ``nn`` a 1x1 conv (2C -> 2C),
    norm and activation.

    Args:
        channels (int): Channels C.
        hop (int): The graph's step K.
        cfg (BlockConfig): Norm, activation and form of the blocks.
    """

    def __init__(self, channels: int, hop: int, cfg: BlockConfig) -> None:
        super().__init__(channels, hop, cfg, out_channels=2 * channels)

    def aggregate(self, x: torch.Tensor) -> torch.Tensor:
        return svga_features(x, self.hop)


class SVGAGrapher(nn.Module):
    """Token mixer of an SVGA block: ``fc2(graph_conv(fc1(x)))``.

    Args:
        channels (int): Channels.
        hop (int): The graph's step K.
        cfg (BlockConfig): Norm, activation and form of the blocks.
    """

    def __init__(self, channels: int, hop: int, cfg: BlockConfig) -> None:
        super().__init__()
        self.fc1 = cfg.conv(channels, channels, 1, act=False)
        self.graph_conv = SVGAGraphConv(channels, hop, cfg)
        self.fc2 = cfg.conv(2 * channels, channels, 1, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.graph_conv(self.fc1(x)))


class SVGABlock(nn.Module):
    """Global block of MobileViG: ``x = x + grapher(x)``, then
    ``x = x + ffn(x)`` (no layer scales).

    Args:
        channels (int): Channels.
        hop (int): The graph's step K.
        ffn_ratio (int): FFN hidden channels = ``ffn_ratio * channels``.
            Defaults to 4.
        drop_path_rate (float): Drop path rate. Defaults to 0.
        cfg (BlockConfig, optional): Norm, activation and form (its layer
            scale is not used). Defaults to ``BlockConfig()``.
    """

    def __init__(self, channels: int, hop: int, ffn_ratio: int = 4,
                 drop_path_rate: float = 0.,
                 cfg: Optional[BlockConfig] = None) -> None:
        super().__init__()
        cfg = cfg or BlockConfig()
        self.deploy = cfg.deploy
        self.grapher = SVGAGrapher(channels, hop, cfg)
        hidden = channels * ffn_ratio
        self.ffn = nn.Sequential(cfg.conv(channels, hidden, 1),
                                 cfg.conv(hidden, channels, 1, act=False))
        self.drop_path = drop_path(drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.grapher(x))
        x = x + self.drop_path(self.ffn(x))
        return x

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Fold the norms into the convs."""
        if self.deploy:
            return
        grapher = self.grapher
        grapher.fc1 = fold_conv_module(grapher.fc1)
        grapher.graph_conv.nn = fold_conv_module(grapher.graph_conv.nn)
        grapher.fc2 = fold_conv_module(grapher.fc2)
        self.ffn = nn.Sequential(*map(fold_conv_module, self.ffn))
        self.deploy = True


@MODELS.register_module()
class MobileViG(MobileViGBase):
    """MobileViG backbone.

    A PyTorch implementation of `MobileViG: Graph-Based Sparse Attention for
    Mobile Vision Applications <https://arxiv.org/abs/2307.00395>`_ (CVPR
    Workshops 2023), the baseline of MobileViGv2. Registered in mmengine's
    root ``MODELS``, so mmdet, mmseg and mmpretrain configs all find
    ``type='MobileViG'``. Stages 0-2 are the local stages (inverted
    residuals), stage 3 the global one (SVGA blocks); their outputs have
    strides 4, 8, 16 and 32, as the reference detection backbone returns
    them.

    Args:
        arch (str | dict): ``'ti'``, ``'s'``, ``'m'`` or ``'b'``, or a dict
            with the keys of :attr:`arch_settings` (``channels``, ``blocks``),
            one entry per stage. Defaults to ``'m'``.
        hop (int): The step K of the global stage's sparse graph.
            Defaults to 2.
        **kwargs: ``in_channels``, ``out_indices``, ``frozen_stages``,
            ``norm_eval``, ``norm_cfg``, ``act_cfg``, ``drop_path_rate``,
            ``drop_path_schedule``, ``layer_scale_init_value`` (of the
            inverted residuals), ``expand_ratio``, ``with_cp``,
            ``efficient_conv_bn_eval``, ``deploy`` and ``init_cfg``: see
            :class:`MobileViGBase`. The reference spreads ``drop_path_rate``
            linearly over all blocks in order, so both schedules give the
            same rates.

    Example:
        >>> import torch
        >>> from mvig2_mm.models import MobileViG
        >>> outs = MobileViG(arch='ti').eval()(torch.rand(1, 3, 224, 224))
        >>> [tuple(out.shape[1:]) for out in outs]  # strides 4, 8, 16, 32
        [(42, 56, 56), (84, 28, 28), (168, 14, 14), (256, 7, 7)]
    """

    arch_settings: Dict[str, Dict[str, list]] = {
        'ti': dict(channels=[42, 84, 168, 256], blocks=[2, 2, 6, 2]),
        's': dict(channels=[42, 84, 176, 256], blocks=[3, 3, 9, 3]),
        'm': dict(channels=[42, 84, 224, 400], blocks=[3, 3, 9, 3]),
        'b': dict(channels=[42, 84, 240, 464], blocks=[5, 5, 15, 5]),
    }

    def __init__(self, arch='m', hop: int = 2, **kwargs) -> None:
        self.hop = hop
        super().__init__(arch, **kwargs)

    def _num_blocks(self) -> int:
        return sum(self.arch['blocks'])

    def _make_stage(self, index: int, drop_paths: List[float],
                    cfg: BlockConfig) -> List[nn.Module]:
        channels = self.channels[index]
        local = index < self.num_stages - 1  # else the global stage
        return [InvertedResidual(channels, self.expand_ratio,
                                 drop_paths.pop(0), cfg) if local else
                SVGABlock(channels, self.hop, self.expand_ratio,
                          drop_paths.pop(0), cfg)
                for _ in range(self.arch['blocks'][index])]

    @classmethod
    def arch_from_state_dict(cls, state_dict: Dict[str, torch.Tensor]
                             ) -> Optional[Dict[str, list]]:
        blocks: Dict[int, set] = {}
        channels: Dict[int, int] = {}
        for key, value in state_dict.items():
            m = re.match(r'^stages\.(\d+)\.(\d+)\.(pw1|grapher)\.', key)
            if not m:
                continue
            stage, block = int(m[1]), int(m[2])
            blocks.setdefault(stage, set()).add(block)
            if key.endswith(('pw1.conv.weight', 'grapher.fc1.conv.weight')):
                channels[stage] = value.shape[1]
        if not any('.grapher.' in k for k in state_dict):
            return None
        stages = sorted(blocks)
        return dict(channels=[channels.get(s) for s in stages],
                    blocks=[len(blocks[s]) for s in stages])
