"""MobileViGv2 backbone ("Scaling Graph Convolutions for Mobile Vision").

One implementation for classification, detection and segmentation. Numbers
follow the reference implementation (github.com/SLDGroup/MobileViGv2) exactly;
module names follow OpenMMLab conventions (``ConvModule`` with
``conv``/``bn``), and :mod:`mvig2_mm.weights.converter` maps reference
checkpoints onto them. The inverted residual block and the backbone plumbing
are shared with MobileViG (:mod:`.base`).
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


def _neighbours(x: torch.Tensor, hop: int, dim: int) -> List[torch.Tensor]:
    """The nodes ``hop`` steps before and after each node along ``dim``,
    cyclically, as the reference's slicing has them: for ``0 < hop < L``
    ``torch.roll(x, hop, dim)`` and ``torch.roll(x, -hop, dim)``; for
    ``hop >= L`` both are ``x`` itself (``torch.roll`` would wrap around).

    Written as a gather whose indices are computed from the size in the
    graph, so that a captured graph (ONNX, ``torch.export``) keeps this rule
    for every size without branching on (or specialising to) the one it was
    captured at."""
    size = x.shape[dim]
    index = torch.arange(size, device=x.device)
    size = torch.zeros_like(index) + size  # a tensor the graph computes
    shift = torch.where(size > hop, hop, 0)
    return [x.index_select(dim, torch.remainder(index - shift, size)),
            x.index_select(dim, torch.remainder(index + shift, size))]


def max_relative_features(x: torch.Tensor, hop: int) -> torch.Tensor:
    """Max-relative aggregation over MobileViGv2's fixed sparse graph.

    Each node is connected to the nodes ``hop`` steps up, down, left and right
    (wrapping around). Returns ``max(0, max_j(x_j) - x)`` which equals the
    reference's ``max(0, x_up - x, x_down - x, ...)`` bit for bit (rounding of
    ``a - x`` is monotonic in ``a``).

    As in the reference, an axis of length ``L`` is only shifted when
    ``0 < hop < L``; otherwise its neighbours are the node itself and add
    nothing. Eager mode skips such an axis; a captured graph (tracing,
    ``torch.export`` or ``torch.compile``, so both ONNX exporters) keeps both
    axes and lets the slicing decide, so that it stays right for any input
    size without depending on it. Without autograd the shifted copies are
    never built: the maximum accumulates in one buffer, reading slices of
    ``x``.

    Args:
        x (Tensor): Features of shape (N, C, H, W).
        hop (int): Graph hop K of the stage.

    Returns:
        Tensor: ``x_j`` of the same shape as ``x``.
    """
    capturing = capturing_graph()
    dims = [dim for dim in (2, 3)
            if hop > 0 and (capturing or hop < x.shape[dim])]
    if not dims:
        return torch.zeros_like(x)
    if capturing or (torch.is_grad_enabled() and x.requires_grad):
        neighbours: List[torch.Tensor] = []
        for dim in dims:
            if capturing:  # gathers: right for any size of the graph
                neighbours += _neighbours(x, hop, dim)
            else:  # equal here (0 < hop < L); its backward is one roll
                neighbours += [torch.roll(x, hop, dim),
                               torch.roll(x, -hop, dim)]
        nearest = neighbours[0]
        for other in neighbours[1:]:
            nearest = torch.maximum(nearest, other)
        return F.relu(nearest - x)
    nearest = torch.roll(x, hop, dims[0])
    roll_reduce_(torch.maximum, nearest, x, x.shape[dims[0]] - hop, dims[0])
    for dim in dims[1:]:
        roll_reduce_(torch.maximum, nearest, x, hop, dim)
        roll_reduce_(torch.maximum, nearest, x, x.shape[dim] - hop, dim)
    return nearest.sub_(x).relu_()


torch.fx.wrap('max_relative_features')  # a call in a torch.fx graph


class MaxRelativeGraphConv(GraphConv):
    """Max-relative graph convolution (MRConv4d in the reference).

    ``nn(concat([x, max_relative_features(x)]))`` with ``nn`` a 1x1 conv
    (2C -> C), norm and activation. (Applying the conv's weight as two halves,
    ``conv(x, W[:, :C]) + conv(x_j, W[:, C:])``, avoids the concatenation but
    measured no faster in training and slower in inference, where the
    deploy form runs conv and activation as one kernel.)

    Arguments as :class:`GraphConv`, with ``out_channels`` C.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nn(torch.cat([x, max_relative_features(x, self.hop)],
                                 dim=1))


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
        conv.weight[:, 0, centre, centre] += 1
        del self.pe
        self.reparam_conv = conv
        self.deploy = True


class Grapher(nn.Module):
    """Token mixer of an MGC block: cpe -> fc1 -> graph conv -> fc2.

    Args:
        channels (int): Channels.
        hop (int): Graph hop K.
        norm_cfg (dict, optional): Norm layer config; None in the deploy
            form.
        act_cfg (dict): Activation config (used inside the graph conv).
        deploy (bool): Build the folded form. Defaults to False.
    """

    def __init__(self, channels: int, hop: int,
                 norm_cfg: Optional[ConfigType], act_cfg: ConfigType,
                 deploy: bool = False) -> None:
        super().__init__()
        self.cpe = RepCPE(channels, 7, deploy=deploy)
        self.fc1 = conv_module(channels, channels, 1, norm_cfg, None)
        self.graph_conv = MaxRelativeGraphConv(channels, channels, hop,
                                               norm_cfg, act_cfg)
        self.fc2 = conv_module(channels, channels, 1, norm_cfg, None)

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        """Everything but ``fc2``."""
        return self.graph_conv(self.fc1(self.cpe(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.mix(x))


class MGCBlock(ResidualBlock):
    """Mobile Graph Convolution block: ``x + ls1 * mixer(x)``, then
    ``x + ls2 * ffn(x)``.

    Args:
        channels (int): Channels.
        hop (int): Graph hop K.
        ffn_ratio (int): FFN hidden channels = ``ffn_ratio * channels``.
            Defaults to 4.
        **kwargs: ``norm_cfg``, ``act_cfg``, ``drop_path``,
            ``layer_scale_init_value``, ``with_cp`` and ``deploy`` of
            :class:`ResidualBlock`.
    """

    def __init__(self, channels: int, hop: int, ffn_ratio: int = 4,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        norm, act = self.norm_cfg, self.act_cfg
        self.mixer = Grapher(channels, hop, norm, act, self.deploy)
        self.ffn = nn.Sequential(
            conv_module(channels, channels * ffn_ratio, 1, norm, act),
            conv_module(channels * ffn_ratio, channels, 1, norm, None))
        self.layer_scale_1 = self._layer_scale(channels)
        self.layer_scale_2 = self._layer_scale(channels)

    def branches(self) -> List[Tuple[Callable, ConvModule,
                                     Optional[torch.Tensor]]]:
        return [(self.mixer.mix, self.mixer.fc2, self.layer_scale_1),
                (self.ffn[0], self.ffn[1], self.layer_scale_2)]


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

    family_markers = ('.mixer.', '.dws.')

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
                    block_cfg: dict) -> List[nn.Module]:
        channels = self.channels[index]
        blocks: List[nn.Module] = []
        for _ in range(self.arch['ir_blocks'][index]):
            blocks.append(InvertedResidual(
                channels, self.expand_ratio, drop_path=drop_paths.pop(0),
                **block_cfg))
        for _ in range(self.arch['mgc_blocks'][index]):
            blocks.append(MGCBlock(
                channels, self.arch['hops'][index],
                ffn_ratio=self.expand_ratio, drop_path=drop_paths.pop(0),
                **block_cfg))
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
