"""GreedyViG backbone ("GreedyViG: Dynamic Axial Graph Construction for
Efficient Vision GNNs", CVPR 2024), the third of the family.

MobileViGv2's layout (stem, inverted residuals, MGC blocks with a
conditional positional encoding, downsampling convs, classifier head) with
graph blocks in every stage and its own graph convolution: dynamic axial
graph construction (DAGC). Numbers follow the reference implementation
(``models/greedyvig.py`` of github.com/SLDGroup/GreedyViG) exactly; its
checkpoints convert to MobileViGv2's key names
(:mod:`mvig2_mm.weights.converter`).
"""
from typing import Dict, List

import torch
from mmengine.registry import MODELS

from ..utils.graph_capture import capturing_graph
from .base import (GraphConv, every_shift_in_graph, rolled, size_in_graph,
                   static_size, wrap_index)
from .mobilevigv2 import MobileViGv2


def distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The L1 distance of the nodes of ``x`` and ``y`` over the channels,
    shape (N, 1, H, W) (as the reference computes it: ``torch.norm`` with
    ``p=1``, whose rounding differs from ``(x - y).abs().sum(1)``)."""
    return torch.norm(x - y, p=1, dim=1, keepdim=True)


def half_way(x: torch.Tensor) -> torch.Tensor:
    """Each node's partner half an image away: ``x`` rolled by
    ``ceil(H / 2)`` rows and ``ceil(W / 2)`` columns (the reference's
    ``x[..., -H // 2:] / x[..., :-H // 2]`` concatenation)."""
    if capturing_graph():
        for dim in (2, 3):
            size = static_size(x, dim)
            if size is not None:  # slices at a fixed size
                x = rolled(x, (size + 1) // 2, dim)
                continue
            # the shift computed from the size in the graph
            length = size_in_graph(x, dim)
            index = wrap_index(
                torch.arange(length, device=x.device) - (length + 1) // 2,
                length)
            # int32 indices: Core ML's gather takes no other
            x = x.index_select(dim, index.to(torch.int32))
        return x
    return torch.roll(x, ((x.shape[2] + 1) // 2, (x.shape[3] + 1) // 2),
                      dims=(2, 3))


def dynamic_axial_features(x: torch.Tensor, hop: int) -> torch.Tensor:
    """GreedyViG's dynamic axial graph: each node keeps the neighbours every
    ``hop`` rows and columns away (wrapping around) whose L1 distance to it
    is below a threshold of its image, the mean minus the standard deviation
    (unbiased) of the distances of all nodes to their partners half an image
    away; then ``x_j = max(0, max over the kept neighbours of (x_n - x))``.

    Written as the reference computes it, for the same bits: the mask is
    discontinuous, so another rounding can keep or drop a neighbour. The
    shift 0 of the reference's ``range(0, H, hop)`` changes nothing (it
    adds ``max(x_j, 0)``) and is left out. A captured graph takes every
    shift of an axis in one gather whose count it computes from the size
    (:func:`~.base.every_shift_in_graph`).

    Args:
        x (Tensor): Features of shape (N, C, H, W).
        hop (int): The graph's step K.

    Returns:
        Tensor: ``x_j`` of the same shape as ``x``.
    """
    distances = distance(x, half_way(x))
    threshold = (torch.mean(distances, dim=[2, 3], keepdim=True)
                 - torch.std(distances, dim=[2, 3], keepdim=True))
    x_j = x - x
    if capturing_graph():
        for dim in (2, 3):
            neighbours = every_shift_in_graph(x, hop, dim)
            node = x.unsqueeze(dim)
            near = torch.norm(node - neighbours, p=1, dim=1, keepdim=True) \
                < threshold.unsqueeze(dim)
            kept = (neighbours - node) * torch.where(near, 1, 0)
            x_j = torch.max(x_j, kept.amax(dim))
        return x_j
    for dim in (2, 3):
        for shift in range(hop, x.shape[dim], hop):
            neighbour = torch.roll(x, shift, dim)
            near = distance(x, neighbour) < threshold
            x_j = torch.max(x_j, (neighbour - x) * torch.where(near, 1, 0))
    return x_j


# one call in a torch.fx graph (Tune mode traces the backbone)
torch.fx.wrap('dynamic_axial_features')


class DynamicAxialGraphConv(GraphConv):
    """GreedyViG's graph convolution, DynamicMRConv4d in the reference: a
    :class:`~.base.GraphConv` over :func:`dynamic_axial_features`."""

    def aggregate(self, x: torch.Tensor) -> torch.Tensor:
        return dynamic_axial_features(x, self.hop)


@MODELS.register_module()
class GreedyViG(MobileViGv2):
    """GreedyViG backbone.

    A PyTorch implementation of `GreedyViG: Dynamic Axial Graph Construction
    for Efficient Vision GNNs <https://arxiv.org/abs/2405.06849>`_ (CVPR
    2024). Registered in mmengine's root ``MODELS``, so mmdet, mmseg and
    mmpretrain configs all find ``type='GreedyViG'``. MobileViGv2's blocks
    and layout with :class:`DynamicAxialGraphConv` in the graph blocks, which
    every stage has.

    Args:
        arch (str | dict): ``'s'``, ``'m'`` or ``'b'``, or a dict with the
            keys of :attr:`arch_settings` (``channels``, ``ir_blocks``,
            ``mgc_blocks`` (the graph blocks), ``hops``), one entry per
            stage. Defaults to ``'m'``.
        **kwargs: ``in_channels``, ``out_indices``, ``frozen_stages``,
            ``norm_eval``, ``norm_cfg``, ``act_cfg``, ``drop_path_rate``,
            ``drop_path_schedule``, ``layer_scale_init_value``,
            ``expand_ratio``, ``with_cp``, ``efficient_conv_bn_eval``,
            ``deploy`` and ``init_cfg``: see
            :class:`~.base.MobileViGBase`. The reference spreads
            ``drop_path_rate`` linearly over all blocks in order, so both
            schedules give the same rates.

    Example:
        >>> import torch
        >>> from mvig2_mm.models import GreedyViG
        >>> model = GreedyViG(arch='s', out_indices=(3, )).eval()
        >>> model(torch.rand(1, 3, 224, 224))[0].shape  # stride 32
        torch.Size([1, 384, 7, 7])
    """

    # (variant, stage channels, inverted residuals and graph blocks per
    # stage), K = 8, 4, 2, 1
    arch_settings: Dict[str, Dict[str, list]] = {
        name: dict(channels=channels, ir_blocks=irs, mgc_blocks=graphs,
                   hops=[8, 4, 2, 1])
        for name, channels, irs, graphs in (
            ('s', [48, 96, 192, 384], [2, 2, 6, 2], [2, 2, 2, 2]),
            ('m', [56, 112, 224, 448], [3, 3, 9, 3], [3, 3, 3, 3]),
            ('b', [64, 128, 256, 512], [4, 4, 12, 3], [4, 4, 4, 3]))}
    graph_conv = DynamicAxialGraphConv

    def _reference_drop_path_rates(self, linear: List[float]) -> List[float]:
        # the reference advances its index after every block
        # (detection/greedyvig_backbone.py:266-283)
        return linear
