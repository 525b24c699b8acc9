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
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.registry import MODELS

from ..utils.graph_capture import capturing_graph
from .base import (ConfigType, GraphConv, InvertedResidual, MobileViGBase,
                   ResidualBlock, conv_module, roll_reduce_)


def _shifted_min_captured(x: torch.Tensor, hop: int, dim: int
                          ) -> torch.Tensor:
    """The minimum of ``x`` and all its cyclic shifts by ``hop, 2 hop, ...``
    (less than the axis length) along ``dim``, as gathers whose count and
    indices the graph computes from the size: right for every size of a
    captured graph (ONNX, ``torch.export``)."""
    size = x.shape[dim]
    length = torch.zeros((), dtype=torch.long, device=x.device) + size
    count = torch.div(length - 1, hop, rounding_mode='floor') + 1
    shifts = torch.arange(count, device=x.device) * hop  # 0, K, 2K, ...
    index = torch.remainder(
        torch.arange(length, device=x.device)[None, :] - shifts[:, None],
        length)
    # int32 indices: Core ML's gather takes no other (ONNX's takes both)
    gathered = x.index_select(dim, index.flatten().to(torch.int32))
    shape = list(x.shape)
    shape[dim:dim + 1] = [-1, size]
    return gathered.reshape(shape).amin(dim)


def svga_features(x: torch.Tensor, hop: int) -> torch.Tensor:
    """Sparse vision graph attention's aggregation (MobileViG).

    Each node is connected to the nodes ``hop, 2 hop, ...`` rows above it and
    columns left of it (wrapping around; shifts shorter than the axis).
    Returns ``max(0, max_j(x - x_j))``, which equals the reference's running
    maximum of ``x - roll(x, i)`` bit for bit: it is computed as
    ``relu(x - min_j(x_j))`` (rounding of ``x - a`` is monotonic in ``a``).
    Without autograd the shifted copies are never built: the minimum
    accumulates in one buffer, reading slices of ``x``.

    Args:
        x (Tensor): Features of shape (N, C, H, W).
        hop (int): The graph's step K.

    Returns:
        Tensor: ``x_j`` of the same shape as ``x``.
    """
    if capturing_graph():
        nearest = torch.minimum(_shifted_min_captured(x, hop, 2),
                                _shifted_min_captured(x, hop, 3))
        return F.relu(x - nearest)
    shifts = [(i, dim) for dim in (2, 3)
              for i in range(hop, x.shape[dim], hop)]
    if torch.is_grad_enabled() and x.requires_grad:
        nearest = x
        for shift, dim in shifts:
            nearest = torch.minimum(nearest, torch.roll(x, shift, dim))
        return F.relu(x - nearest)
    nearest = x.clone()
    for shift, dim in shifts:
        roll_reduce_(torch.minimum, nearest, x, shift, dim)
    return torch.sub(x, nearest, out=nearest).relu_()


torch.fx.wrap('svga_features')  # a call in a torch.fx graph (Tune mode)


class SVGAGraphConv(GraphConv):
    """The graph convolution of SVGA (MRConv4d in the reference):
    ``nn(concat([x, svga_features(x)]))`` with ``nn`` a 1x1 conv
    (2C -> 2C), norm and activation. Arguments as :class:`GraphConv`, with
    ``out_channels`` 2C.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nn(torch.cat([x, svga_features(x, self.hop)], dim=1))


class SVGAGrapher(nn.Module):
    """Token mixer of an SVGA block: fc1 -> graph conv -> fc2.

    Args:
        channels (int): Channels.
        hop (int): The graph's step K.
        norm_cfg (dict, optional): Norm layer config; None in the deploy
            form.
        act_cfg (dict): Activation config (inside the graph conv).
    """

    def __init__(self, channels: int, hop: int,
                 norm_cfg: Optional[ConfigType],
                 act_cfg: ConfigType) -> None:
        super().__init__()
        self.fc1 = conv_module(channels, channels, 1, norm_cfg, None)
        self.graph_conv = SVGAGraphConv(channels, 2 * channels, hop,
                                        norm_cfg, act_cfg)
        self.fc2 = conv_module(2 * channels, channels, 1, norm_cfg, None)

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        """Everything but ``fc2``."""
        return self.graph_conv(self.fc1(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.mix(x))


class SVGABlock(ResidualBlock):
    """Global block of MobileViG: ``x + grapher(x)``, then ``x + ffn(x)``
    (no layer scales).

    Args:
        channels (int): Channels.
        hop (int): The graph's step K.
        ffn_ratio (int): FFN hidden channels = ``ffn_ratio * channels``.
            Defaults to 4.
        **kwargs: ``norm_cfg``, ``act_cfg``, ``drop_path``, ``with_cp`` and
            ``deploy`` of :class:`ResidualBlock`.
    """

    def __init__(self, channels: int, hop: int, ffn_ratio: int = 4,
                 **kwargs) -> None:
        kwargs.pop('layer_scale_init_value', None)  # none in this block
        super().__init__(**kwargs)
        norm, act = self.norm_cfg, self.act_cfg
        self.grapher = SVGAGrapher(channels, hop, norm, act)
        self.ffn = nn.Sequential(
            conv_module(channels, channels * ffn_ratio, 1, norm, act),
            conv_module(channels * ffn_ratio, channels, 1, norm, None))

    def branches(self) -> List[Tuple[Callable, ConvModule,
                                     Optional[torch.Tensor]]]:
        return [(self.grapher.mix, self.grapher.fc2, None),
                (self.ffn[0], self.ffn[1], None)]


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
    family_markers = ('local_backbone.', '.grapher.', '.mlp.')

    def __init__(self, arch='m', hop: int = 2, **kwargs) -> None:
        self.hop = hop
        super().__init__(arch, **kwargs)

    def _num_blocks(self) -> int:
        return sum(self.arch['blocks'])

    def _make_stage(self, index: int, drop_paths: List[float],
                    block_cfg: dict) -> List[nn.Module]:
        channels = self.channels[index]
        blocks: List[nn.Module] = []
        for _ in range(self.arch['blocks'][index]):
            if index < self.num_stages - 1:
                blocks.append(InvertedResidual(
                    channels, self.expand_ratio, drop_path=drop_paths.pop(0),
                    **block_cfg))
            else:
                blocks.append(SVGABlock(
                    channels, self.hop, ffn_ratio=self.expand_ratio,
                    drop_path=drop_paths.pop(0), **block_cfg))
        return blocks

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
