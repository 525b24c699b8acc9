"""MobileViGv2 backbone ("Scaling Graph Convolutions for Mobile Vision").

One implementation for classification, detection and segmentation. Numbers
follow the reference implementation (github.com/SLDGroup/MobileViGv2) exactly;
module names follow OpenMMLab conventions (``ConvModule`` with
``conv``/``bn``), and :mod:`mvig2_mm.weights.converter` maps reference
checkpoints onto them. The inverted residual block and the backbone plumbing
are shared with MobileViG (:mod:`.base`).
"""
import re
from functools import reduce
from typing import Dict, List, Optional, Type

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS

from ..utils.fusion import fold_conv_module
from ..utils.graph_capture import capturing_graph
from .base import (BlockConfig, GraphConv, InvertedResidual, MobileViGBase,
                   drop_path, scaled, shifted, shifted_in_graph)


def max_relative_features(x: torch.Tensor, hop: int) -> torch.Tensor:
    """Max-relative aggregation over MobileViGv2's fixed sparse graph:
    ``x_j = max(0, x_up - x, x_down - x, x_left - x, x_right - x)`` with the
    neighbours ``hop`` rows and columns away, wrapping around
    (:func:`~.base.shifted`: as in the reference's slicing, an axis not
    longer than ``hop`` is not shifted, so its neighbours add nothing).

    ``max(0, max_j(x_j) - x)`` equals the reference's running maximum bit
    for bit (the rounding of ``a - x`` is monotonic in ``a``).

    Args:
        x (Tensor): Features of shape (N, C, H, W).
        hop (int): Graph hop K of the stage.

    Returns:
        Tensor: ``x_j`` of the same shape as ``x``.
    """
    shift = shifted_in_graph if capturing_graph() else shifted
    neighbours = [shift(x, step, dim) for dim in (2, 3)
                  for step in (hop, -hop)]
    return F.relu(reduce(torch.maximum, neighbours) - x)


torch.fx.wrap('max_relative_features')  # a call in a torch.fx graph


class MaxRelativeGraphConv(GraphConv):
    """Max-relative graph convolution (MRConv4d in the reference):
    ``nn(concat([x, max_relative_features(x)]))``, ``nn`` a 1x1 conv
    (2C -> C), norm and activation (arguments: :class:`~.base.GraphConv`).
    """

    def aggregate(self, x: torch.Tensor) -> torch.Tensor:
        return max_relative_features(x, self.hop)


class RepCPE(nn.Module):
    """Conditional positional encoding ``x + pe(x)``, ``pe`` a depthwise conv.

    Re-parameterisable (from FastViT): :meth:`switch_to_deploy` folds the
    identity into the kernel centre, leaving one depthwise conv.

    Args:
        channels (int): Channels.
        kernel_size (int): Kernel of the depthwise conv. Defaults to 7.
        deploy (bool): Build the folded form. Defaults to False.
    """

    def __init__(self, channels: int, kernel_size: int = 7,
                 deploy: bool = False) -> None:
        super().__init__()
        self.deploy = deploy
        conv = nn.Conv2d(channels, channels, kernel_size, 1, kernel_size // 2,
                         groups=channels, bias=True)
        if deploy:
            self.reparam_conv = conv
        else:
            self.pe = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            return self.reparam_conv(x)
        return x + self.pe(x)

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        if self.deploy:
            return
        conv = self.pe
        centre = conv.kernel_size[0] // 2
        conv.weight[:, 0, centre, centre] += 1  # x + pe(x) as one kernel
        del self.pe
        self.reparam_conv = conv
        self.deploy = True


class Grapher(nn.Module):
    """Token mixer of an MGC block: ``fc2(graph_conv(fc1(cpe(x))))``.

    Args:
        channels (int): Channels.
        hop (int): Graph hop K.
        cfg (BlockConfig): Norm, activation and form of the blocks.
        graph_conv (type): The graph convolution, a
            :class:`~.base.GraphConv`. Defaults to
            :class:`MaxRelativeGraphConv` (GreedyViG has its own).
    """

    def __init__(self, channels: int, hop: int, cfg: BlockConfig,
                 graph_conv: Type[GraphConv] = MaxRelativeGraphConv) -> None:
        super().__init__()
        self.cpe = RepCPE(channels, 7, deploy=cfg.deploy)
        self.fc1 = cfg.conv(channels, channels, 1, act=False)
        self.graph_conv = graph_conv(channels, hop, cfg)
        self.fc2 = cfg.conv(channels, channels, 1, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.graph_conv(self.fc1(self.cpe(x))))


class MGCBlock(nn.Module):
    """Mobile Graph Convolution block:
    ``x = x + ls1 * mixer(x)``, then ``x = x + ls2 * ffn(x)``.

    Args:
        channels (int): Channels.
        hop (int): Graph hop K.
        ffn_ratio (int): FFN hidden channels = ``ffn_ratio * channels``.
            Defaults to 4.
        drop_path_rate (float): Drop path rate. Defaults to 0.
        cfg (BlockConfig, optional): Norm, activation, initial layer scales
            and form. Defaults to ``BlockConfig()``.
        graph_conv (type): The mixer's graph convolution (see
            :class:`Grapher`). Defaults to :class:`MaxRelativeGraphConv`.
    """

    def __init__(self, channels: int, hop: int, ffn_ratio: int = 4,
                 drop_path_rate: float = 0.,
                 cfg: Optional[BlockConfig] = None,
                 graph_conv: Type[GraphConv] = MaxRelativeGraphConv) -> None:
        super().__init__()
        cfg = cfg or BlockConfig()
        hidden = channels * ffn_ratio
        self.deploy = cfg.deploy
        self.mixer = Grapher(channels, hop, cfg, graph_conv)
        self.ffn = nn.Sequential(cfg.conv(channels, hidden, 1),
                                 cfg.conv(hidden, channels, 1, act=False))
        self.layer_scale_1 = cfg.layer_scale(channels)
        self.layer_scale_2 = cfg.layer_scale(channels)
        self.drop_path = drop_path(drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(scaled(self.mixer(x), self.layer_scale_1))
        x = x + self.drop_path(scaled(self.ffn(x), self.layer_scale_2))
        return x

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Fold the norms into the convs, the identity of the positional
        encoding into its kernel, and the layer scales into the last conv
        of their branch."""
        if self.deploy:
            return
        mixer = self.mixer
        mixer.cpe.switch_to_deploy()
        mixer.fc1 = fold_conv_module(mixer.fc1)
        mixer.graph_conv.nn = fold_conv_module(mixer.graph_conv.nn)
        mixer.fc2 = fold_conv_module(mixer.fc2, self.layer_scale_1)
        self.ffn = nn.Sequential(
            fold_conv_module(self.ffn[0]),
            fold_conv_module(self.ffn[1], self.layer_scale_2))
        self.layer_scale_1 = self.layer_scale_2 = None
        self.deploy = True


@MODELS.register_module()
class MobileViGv2(MobileViGBase):
    """MobileViGv2 backbone.

    A PyTorch implementation of `Scaling Graph Convolutions for Mobile Vision
    <https://arxiv.org/abs/2406.05850>`_ (CVPR Workshops 2024). Registered in
    mmengine's root ``MODELS``, so mmdet, mmseg and mmpretrain configs all
    find ``type='MobileViGv2'``.

    Args:
        arch (str | dict): ``'ti'``, ``'s'``, ``'m'`` or ``'b'``, or a dict
            with the keys of :attr:`arch_settings` (``channels``,
            ``ir_blocks``, ``mgc_blocks``, ``hops``), one entry per stage.
            Defaults to ``'m'``.
        **kwargs: ``in_channels``, ``out_indices``, ``frozen_stages``,
            ``norm_eval``, ``norm_cfg``, ``act_cfg``, ``drop_path_rate``,
            ``drop_path_schedule``, ``layer_scale_init_value``,
            ``expand_ratio``, ``with_cp``, ``efficient_conv_bn_eval``,
            ``deploy`` and ``init_cfg``: see :class:`MobileViGBase`.
            With ``drop_path_schedule='reference'`` the blocks get the
            reference's rates: spaced linearly over all blocks, but the
            index advances only after MGC blocks, so an inverted residual
            takes the rate of the MGC block after it and the last block
            ends well below ``drop_path_rate``. ``deploy`` also folds the
            conditional positional encodings.

    Example:
        >>> import torch
        >>> from mvig2_mm.models import MobileViGv2
        >>> model = MobileViGv2(arch='ti').eval()
        >>> for out in model(torch.rand(1, 3, 224, 224)):
        ...     print(tuple(out.shape))
        (1, 32, 56, 56)
        (1, 64, 28, 28)
        (1, 128, 14, 14)
        (1, 256, 7, 7)
    """

    arch_settings: Dict[str, Dict[str, list]] = {
        'ti': dict(channels=[32, 64, 128, 256], ir_blocks=[2, 2, 6, 2],
                   mgc_blocks=[0, 2, 2, 2], hops=[0, 8, 4, 2]),
        's': dict(channels=[32, 64, 128, 256], ir_blocks=[3, 3, 9, 3],
                  mgc_blocks=[0, 3, 3, 3], hops=[0, 8, 4, 2]),
        'm': dict(channels=[32, 64, 192, 384], ir_blocks=[3, 3, 9, 3],
                  mgc_blocks=[0, 3, 3, 3], hops=[0, 8, 4, 2]),
        'b': dict(channels=[64, 128, 256, 512], ir_blocks=[3, 3, 9, 3],
                  mgc_blocks=[0, 3, 3, 3], hops=[0, 8, 4, 2]),
    }
    #: The graph convolution of the MGC blocks.
    graph_conv: Type[GraphConv] = MaxRelativeGraphConv

    def _num_blocks(self) -> int:
        return sum(self.arch['ir_blocks']) + sum(self.arch['mgc_blocks'])

    def _reference_drop_path_rates(self, linear: List[float]) -> List[float]:
        # the reference (e.g. detection/mobilevigv2_backbone.py, lines
        # 349-366) advances its index after MGC blocks only
        rates, index = [], 0
        for irs, mgcs in zip(self.arch['ir_blocks'], self.arch['mgc_blocks']):
            rates += [linear[index]] * irs
            rates += linear[index:index + mgcs]
            index += mgcs
        return rates

    def _make_stage(self, index: int, drop_paths: List[float],
                    cfg: BlockConfig) -> List[nn.Module]:
        channels = self.channels[index]
        blocks: List[nn.Module] = []
        for _ in range(self.arch['ir_blocks'][index]):
            blocks.append(InvertedResidual(
                channels, self.expand_ratio, drop_paths.pop(0), cfg))
        for _ in range(self.arch['mgc_blocks'][index]):
            blocks.append(MGCBlock(
                channels, self.arch['hops'][index], self.expand_ratio,
                drop_paths.pop(0), cfg, self.graph_conv))
        return blocks

    @classmethod
    def arch_from_state_dict(cls, state_dict: Dict[str, torch.Tensor]
                             ) -> Optional[Dict[str, list]]:
        kinds: Dict[int, Dict[int, str]] = {}
        channels: Dict[int, int] = {}
        for key, value in state_dict.items():
            m = re.match(r'^stages\.(\d+)\.(\d+)\.(\w+)', key)
            if not m:
                continue
            stage, block, part = int(m[1]), int(m[2]), m[3]
            kind = {'pw1': 'ir', 'mixer': 'mgc', 'conv': 'down'}.get(part)
            if kind:
                kinds.setdefault(stage, {})[block] = kind
            if part == 'pw1' and key.endswith('conv.weight'):
                channels[stage] = value.shape[1]
        if not any('mgc' in k.values() for k in kinds.values()):
            return None
        stages = sorted(kinds)
        return dict(
            channels=[channels.get(s) for s in stages],
            ir_blocks=[list(kinds[s].values()).count('ir') for s in stages],
            mgc_blocks=[list(kinds[s].values()).count('mgc')
                        for s in stages])
