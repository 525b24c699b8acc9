"""MobileViGv2 backbone ("Scaling Graph Convolutions for Mobile Vision").

One implementation for classification, detection and segmentation. Numbers
follow the reference implementation (github.com/SLDGroup/MobileViGv2) exactly;
module names follow OpenMMLab conventions (``ConvModule`` with
``conv``/``bn``), and :mod:`mvig2_mm.weights.converter` maps reference
checkpoints onto them.
"""
import copy
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from ...weights import convert_backbone_keys_, load_pretrained, pretrained_cfg
from ..utils.fused_kernels import enable_fused_kernels
from ..utils.fusion import DeployConvModule, fuse_conv_module
from ..utils.graph_capture import capturing_graph

ConfigType = Dict
Arch = Union[str, Dict[str, list]]


def conv_module(in_channels: int, out_channels: int, kernel_size: int,
                norm_cfg: Optional[ConfigType], act_cfg: Optional[ConfigType],
                **kwargs) -> ConvModule:
    """A ``ConvModule`` with a conv bias, as the reference checkpoints have
    (its bias-before-norm warning is expected here and silenced). Without a
    norm (the deploy form) it is a :class:`DeployConvModule`."""
    if norm_cfg is None:
        return DeployConvModule(in_channels, out_channels, kernel_size,
                                bias=True, act_cfg=act_cfg, **kwargs)
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', 'Unnecessary conv bias')
        return ConvModule(in_channels, out_channels, kernel_size, bias=True,
                          norm_cfg=norm_cfg, act_cfg=act_cfg, **kwargs)


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


def _max_shifted_(out: torch.Tensor, x: torch.Tensor, shift: int,
                  dim: int) -> None:
    """``out = max(out, torch.roll(x, shift, dim))`` in place, reading the
    two slices of ``x`` directly (``0 < shift < L``)."""
    size = x.shape[dim]
    head = out.narrow(dim, shift, size - shift)
    torch.maximum(head, x.narrow(dim, 0, size - shift), out=head)
    tail = out.narrow(dim, 0, shift)
    torch.maximum(tail, x.narrow(dim, size - shift, shift), out=tail)


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
    _max_shifted_(nearest, x, x.shape[dims[0]] - hop, dims[0])
    for dim in dims[1:]:
        _max_shifted_(nearest, x, hop, dim)
        _max_shifted_(nearest, x, x.shape[dim] - hop, dim)
    return nearest.sub_(x).relu_()


class MaxRelativeGraphConv(nn.Module):
    """Max-relative graph convolution (MRConv4d in the reference).

    ``nn(concat([x, max_relative_features(x)]))`` with ``nn`` a 1x1 conv
    (2C -> C), norm and activation. (Applying the conv's weight as two halves,
    ``conv(x, W[:, :C]) + conv(x_j, W[:, C:])``, avoids the concatenation but
    measured no faster in training and slower in inference, where the
    deploy form runs conv and activation as one kernel.)

    Args:
        channels (int): Input and output channels C.
        hop (int): Graph hop K.
        norm_cfg (dict, optional): Norm layer config; None in the deploy
            form (folded into the conv).
        act_cfg (dict): Activation config.
    """

    def __init__(self, channels: int, hop: int,
                 norm_cfg: Optional[ConfigType],
                 act_cfg: ConfigType) -> None:
        super().__init__()
        self.hop = hop
        self.nn = conv_module(2 * channels, channels, 1, norm_cfg, act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_j = max_relative_features(x, self.hop)
        return self.nn(torch.cat([x, x_j], dim=1))


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
        self.graph_conv = MaxRelativeGraphConv(channels, hop, norm_cfg,
                                               act_cfg)
        self.fc2 = conv_module(channels, channels, 1, norm_cfg, None)

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        """Everything but ``fc2``."""
        return self.graph_conv(self.fc1(self.cpe(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.mix(x))


class _ResidualBlock(nn.Module):
    """Shared plumbing of the two block types: drop path, layer scales,
    gradient checkpointing and folding the layer scales at deploy time.

    Subclasses build their layers with :attr:`norm_cfg` and
    :attr:`act_cfg` and define ``branches``: the residual branches, applied
    in order, each as ``(body, last, layer_scale)`` with ``last`` its final
    ConvModule and ``layer_scale`` its learnable scale (None in the deploy
    form, where ``last`` has absorbed it and adds the residual itself).

    Args:
        norm_cfg (dict, optional): Norm layer config; None in the deploy
            form (folded into the convolutions).
        act_cfg (dict): Activation config.
        drop_path (float): Drop path rate. Defaults to 0.
        layer_scale_init_value (float): Initial layer scales.
            Defaults to 1e-5.
        with_cp (bool): Use gradient checkpointing. Defaults to False.
        deploy (bool): Build the folded form. Defaults to False.
    """

    def __init__(self, norm_cfg: Optional[ConfigType], act_cfg: ConfigType,
                 drop_path: float = 0., layer_scale_init_value: float = 1e-5,
                 with_cp: bool = False, deploy: bool = False) -> None:
        super().__init__()
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.layer_scale_init_value = layer_scale_init_value
        self.deploy = deploy
        self.with_cp = with_cp
        self.drop_path = (DropPath(drop_path) if drop_path > 0 else
                          nn.Identity())

    def _layer_scale(self, channels: int) -> Optional[nn.Parameter]:
        """A per-channel layer scale; None in the deploy form."""
        if self.deploy:
            return None
        return nn.Parameter(self.layer_scale_init_value *
                            torch.ones(channels, 1, 1))

    def branches(self) -> List[Tuple[Callable, ConvModule,
                                     Optional[torch.Tensor]]]:
        raise NotImplementedError

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        for body, last, layer_scale in self.branches():
            if self.deploy and not self.training:
                x = last(body(x), residual=x)  # x + branch(x), folded
                continue
            out = last(body(x))
            if layer_scale is not None:
                out = layer_scale * out
            x = x + self.drop_path(out)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad and torch.is_grad_enabled():
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Fold every norm into its conv and the layer scales into the last
        conv of their branch."""
        if self.deploy:
            return
        for _, last, layer_scale in self.branches():
            scale = layer_scale.reshape(-1)
            fused = fuse_conv_module(last)
            fused.conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
            fused.conv.bias.mul_(scale)
            _replace_child(self, last, fused)
        for name, _ in list(self.named_parameters(recurse=False)):
            if name.startswith('layer_scale'):
                delattr(self, name)
                setattr(self, name, None)
        for name, module in list(self.named_modules()):
            if isinstance(module, ConvModule) and module.with_norm:
                _replace_child(self, module, fuse_conv_module(module))
            elif isinstance(module, RepCPE):
                module.switch_to_deploy()
        self.deploy = True


class InvertedResidual(_ResidualBlock):
    """Inverted residual block ``x + ls * (pw1 -> dw3x3 -> pw2)(x)``.

    Args:
        channels (int): Channels.
        expand_ratio (int): Hidden channels = ``expand_ratio * channels``.
        **kwargs: ``norm_cfg``, ``act_cfg``, ``drop_path``,
            ``layer_scale_init_value``, ``with_cp`` and ``deploy`` of
            :class:`_ResidualBlock`.
    """

    def __init__(self, channels: int, expand_ratio: int, **kwargs) -> None:
        super().__init__(**kwargs)
        hidden = channels * expand_ratio
        norm, act = self.norm_cfg, self.act_cfg
        self.pw1 = conv_module(channels, hidden, 1, norm, act)
        self.dw = conv_module(hidden, hidden, 3, norm, act, padding=1,
                              groups=hidden)
        self.pw2 = conv_module(hidden, channels, 1, norm, None)
        self.layer_scale_1 = self._layer_scale(channels)

    def branches(self) -> List[Tuple[Callable, ConvModule,
                                     Optional[torch.Tensor]]]:
        return [(self._expand, self.pw2, self.layer_scale_1)]

    def _expand(self, x: torch.Tensor) -> torch.Tensor:
        return self.dw(self.pw1(x))


class MGCBlock(_ResidualBlock):
    """Mobile Graph Convolution block: ``x + ls1 * mixer(x)``, then
    ``x + ls2 * ffn(x)``.

    Args:
        channels (int): Channels.
        hop (int): Graph hop K.
        ffn_ratio (int): FFN hidden channels = ``ffn_ratio * channels``.
            Defaults to 4.
        **kwargs: ``norm_cfg``, ``act_cfg``, ``drop_path``,
            ``layer_scale_init_value``, ``with_cp`` and ``deploy`` of
            :class:`_ResidualBlock`.
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


def _replace_child(root: nn.Module, old: nn.Module, new: nn.Module) -> None:
    """Replace the submodule ``old`` of ``root`` by ``new`` in place."""
    for name, module in root.named_modules():
        for child_name, child in module.named_children():
            if child is old:
                setattr(module, child_name, new)
                return
    raise KeyError(f'{type(old).__name__} is not a submodule')


@MODELS.register_module()
class MobileViGv2(BaseModule):
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
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (int | Sequence[int]): Stages whose outputs are returned
            (negative indices count from the end). Defaults to
            ``(0, 1, 2, 3)``.
        frozen_stages (int): ``-1`` freezes nothing, ``0`` the stem,
            ``k`` the stem and the first ``k`` stages. Defaults to -1.
        norm_eval (bool): Keep norm layers in eval mode while training.
            Defaults to False.
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation config. Defaults to ``dict(type='GELU')``.
        drop_path_rate (float): Stochastic depth rate, spread linearly from 0
            over all blocks in order. (The reference spreads its rate over all
            blocks but advances only after MGC blocks, so its rates are lower
            than its ``drop_path`` suggests; weights are unaffected.)
            Defaults to 0.
        layer_scale_init_value (float): Initial value of the layer scales.
            Defaults to 1e-5.
        expand_ratio (int): Hidden width of inverted residuals and FFNs.
            Defaults to 4.
        with_cp (bool): Gradient checkpointing per block (saves memory,
            costs a second forward). Defaults to False.
        deploy (bool): Build the inference form (norms and layer scales folded
            into convs, CPE folded). Defaults to False.
        init_cfg (dict | list[dict], optional): Initialisation config. A
            ``Pretrained`` entry may point at a converted checkpoint or at a
            reference one (recognised and converted on the fly). Defaults to
            Kaiming-normal convs with zero biases, as the reference.

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

    def __init__(self,
                 arch: Arch = 'm',
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(type='GELU'),
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 1e-5,
                 expand_ratio: int = 4,
                 with_cp: bool = False,
                 deploy: bool = False,
                 init_cfg: Optional[Union[ConfigType, List[ConfigType]]] = (
                     dict(type='Kaiming', layer='Conv2d', mode='fan_in',
                          nonlinearity='leaky_relu', distribution='normal',
                          bias=0.),
                     dict(type='Constant', layer=['_BatchNorm', 'GroupNorm'],
                          val=1., bias=0.)),
                 ) -> None:
        if isinstance(init_cfg, tuple):
            init_cfg = list(copy.deepcopy(init_cfg))
        super().__init__(init_cfg=init_cfg)
        self.arch = self.parse_arch(arch)
        self.channels: List[int] = list(self.arch['channels'])
        self.num_stages = len(self.channels)
        self.out_indices = self._parse_out_indices(out_indices)
        if not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(
                f'frozen_stages must be in [-1, {self.num_stages}] '
                f'(-1: none, 0: stem, k: stem and the first k stages), '
                f'got {frozen_stages}')
        if not 0 <= drop_path_rate < 1:
            raise ValueError(f'drop_path_rate must be in [0, 1), '
                             f'got {drop_path_rate}')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.deploy = deploy
        self.with_cp = with_cp

        c0 = self.channels[0]
        norm = None if deploy else norm_cfg
        self.stem = nn.Sequential(
            conv_module(in_channels, c0 // 2, 3, norm, act_cfg, stride=2,
                        padding=1),
            conv_module(c0 // 2, c0, 3, norm, act_cfg, stride=2, padding=1))

        num_blocks = sum(self.arch['ir_blocks']) + sum(self.arch['mgc_blocks'])
        dpr = torch.linspace(0, drop_path_rate, num_blocks).tolist()
        block_cfg = dict(norm_cfg=norm, act_cfg=act_cfg,
                         layer_scale_init_value=layer_scale_init_value,
                         with_cp=with_cp, deploy=deploy)
        self.stages = nn.ModuleList()
        for i, channels in enumerate(self.channels):
            blocks: List[nn.Module] = []
            if i > 0:
                blocks.append(conv_module(self.channels[i - 1], channels, 3,
                                          norm, None, stride=2, padding=1))
            for _ in range(self.arch['ir_blocks'][i]):
                blocks.append(InvertedResidual(
                    channels, expand_ratio, drop_path=dpr.pop(0), **block_cfg))
            for _ in range(self.arch['mgc_blocks'][i]):
                blocks.append(MGCBlock(
                    channels, self.arch['hops'][i], ffn_ratio=expand_ratio,
                    drop_path=dpr.pop(0), **block_cfg))
            self.stages.append(nn.Sequential(*blocks))
        self._freeze_stages()
        # Reference checkpoints (published ImageNet, COCO and ADE20K files)
        # load as they are, through every loader: PyTorch's, mmengine's.
        self._register_load_state_dict_pre_hook(self._convert_reference_keys)
        if deploy:
            enable_fused_kernels(self)

    @staticmethod
    def _convert_reference_keys(state_dict, prefix, *args) -> None:
        """Load pre-hook: rename reference-layout keys under ``prefix``."""
        convert_backbone_keys_(state_dict, prefix)

    @classmethod
    def parse_arch(cls, arch: Arch) -> Dict[str, list]:
        """Return the arch dict for a preset name or a user dict."""
        if isinstance(arch, str):
            key = arch.lower()
            if key not in cls.arch_settings:
                raise ValueError(
                    f'Unavailable arch {arch!r}. Choose one of '
                    f'{sorted(cls.arch_settings)} or pass a dict with the '
                    f'keys '
                    f'{sorted(cls.arch_settings["ti"])}.')
            return copy.deepcopy(cls.arch_settings[key])
        if not isinstance(arch, dict):
            raise TypeError(f'arch must be a str or a dict, got '
                            f'{type(arch).__name__}')
        essential = set(cls.arch_settings['ti'])
        missing, extra = essential - set(arch), set(arch) - essential
        if missing or extra:
            raise ValueError(
                f'A custom arch dict needs exactly the keys '
                f'{sorted(essential)}'
                + (f'; missing {sorted(missing)}' if missing else '')
                + (f'; unknown {sorted(extra)}' if extra else '') + '.')
        lengths = {k: len(v) for k, v in arch.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f'All arch entries need one value per stage, got '
                             f'lengths {lengths}.')
        return {k: list(v) for k, v in arch.items()}

    def _parse_out_indices(
            self, out_indices: Union[int, Sequence[int]]) -> Tuple[int, ...]:
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        if not isinstance(out_indices, Sequence) or not out_indices:
            raise TypeError(f'out_indices must be an int or a non-empty '
                            f'sequence of ints, got {out_indices!r}')
        parsed = []
        for index in out_indices:
            if not isinstance(index, int) or not (
                    -self.num_stages <= index < self.num_stages):
                raise ValueError(
                    f'Invalid out_indices {list(out_indices)}: each must be '
                    f'an int in [{-self.num_stages}, {self.num_stages - 1}] '
                    f'for {self.num_stages} stages.')
            parsed.append(index % self.num_stages)
        return tuple(parsed)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if x.dim() != 4:
            raise ValueError(f'MobileViGv2 expects an (N, C, H, W) tensor, '
                             f'got shape {tuple(x.shape)}')
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        modules = ([self.stem] if self.frozen_stages >= 0 else []) + [
            self.stages[i] for i in range(max(self.frozen_stages, 0))]
        for module in modules:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'MobileViGv2':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def init_weights(self) -> None:
        """Initialise, or load a ``Pretrained`` checkpoint strictly (reference
        or converted layout; mismatches raise an error naming the keys)."""
        pretrained = pretrained_cfg(self.init_cfg)
        if pretrained is None:
            super().init_weights()
            return
        load_pretrained(self, **pretrained)
        self._is_init = True

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Convert to the inference form in place (outputs unchanged)."""
        if self.deploy:
            return
        for module in list(self.modules()):
            if isinstance(module, _ResidualBlock):
                module.switch_to_deploy()
        for module in list(self.stem) + [s[0] for s in self.stages[1:]]:
            if module.with_norm:
                _replace_child(self, module, fuse_conv_module(module))
        self.deploy = True
        enable_fused_kernels(self)
