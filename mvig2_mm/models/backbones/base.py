"""What the MobileViG backbones share: the inverted residual block, the
residual-branch plumbing (drop path, layer scales, gradient checkpointing,
folding), and the backbone itself (arch presets, stem, stages, out_indices,
freezing, pretrained loading, deploy form). Each family's module adds its own
graph blocks and stage layout (:mod:`.mobilevig`, :mod:`.mobilevigv2`)."""
import copy
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ...weights import (BACKBONE_FAMILIES, convert_backbone_keys_,
                        load_pretrained, pretrained_cfg)
from ..utils.fused_kernels import enable_fused_kernels
from ..utils.fusion import DeployConvModule, fuse_conv_module

ConfigType = Dict
Arch = Union[str, Dict[str, list]]


def roll_reduce_(op: Callable, out: torch.Tensor, x: torch.Tensor,
                 shift: int, dim: int) -> None:
    """``out = op(out, torch.roll(x, shift, dim))`` in place, reading the two
    slices of ``x`` directly instead of building the shifted copy
    (``0 < shift < L``; ``op`` is ``torch.maximum`` or ``torch.minimum``).
    The graph convolutions of both families aggregate their neighbours this
    way when no gradients are needed."""
    size = x.shape[dim]
    head = out.narrow(dim, shift, size - shift)
    op(head, x.narrow(dim, 0, size - shift), out=head)
    tail = out.narrow(dim, 0, shift)
    op(tail, x.narrow(dim, size - shift, shift), out=tail)


class GraphConv(nn.Module):
    """A max-relative graph convolution over a fixed sparse graph:
    ``nn(concat([x, x_j]))`` with ``nn`` a 1x1 conv, norm and activation and
    ``x_j`` the aggregated neighbours. A family's graph conv defines
    ``forward`` with its aggregation (which neighbours, how their
    differences are taken).

    Args:
        channels (int): Input channels C.
        out_channels (int): Output channels.
        hop (int): The graph's step K.
        norm_cfg (dict, optional): Norm layer config; None in the deploy
            form (folded into the conv).
        act_cfg (dict): Activation config.
    """

    def __init__(self, channels: int, out_channels: int, hop: int,
                 norm_cfg: Optional[ConfigType],
                 act_cfg: ConfigType) -> None:
        super().__init__()
        self.hop = hop
        self.nn = conv_module(2 * channels, out_channels, 1, norm_cfg,
                              act_cfg)


def check_input(x: torch.Tensor, name: str) -> torch.Tensor:
    """``x`` if it is an (N, C, H, W) tensor; else a ValueError."""
    if x.dim() != 4:
        raise ValueError(f'{name} expects an (N, C, H, W) tensor, got shape '
                         f'{tuple(x.shape)}')
    return x


def _fx_symbolic_tracing() -> bool:
    """Whether torch.fx's symbolic tracer runs (not torch.export)."""
    from torch.fx import _symbolic_trace
    check = getattr(_symbolic_trace, 'is_fx_symbolic_tracing',
                    _symbolic_trace.is_fx_tracing)  # torch < 2.7
    return check()


# Functions that torch.fx records as calls instead of tracing into: mmengine's
# ``efficient_conv_bn_eval`` traces the backbone, and these branch on sizes.
torch.fx.wrap('check_input')


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


class ResidualBlock(nn.Module):
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
        if _fx_symbolic_tracing():  # efficient_conv_bn_eval traces
            if self.with_cp or not isinstance(self.drop_path, nn.Identity):
                raise ValueError(
                    'efficient_conv_bn_eval (Tune mode) traces the backbone '
                    'with torch.fx, which fixes with_cp and drop path in the '
                    'graph: set with_cp=False and drop_path_rate=0, or use '
                    'the backbone argument efficient_conv_bn_eval=True')
            return self._forward(x)
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
            fused = fuse_conv_module(last)
            if layer_scale is not None:
                scale = layer_scale.reshape(-1)
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
            elif module is not self and hasattr(module, 'switch_to_deploy'):
                module.switch_to_deploy()  # e.g. a positional encoding
        self.deploy = True


class InvertedResidual(ResidualBlock):
    """Inverted residual block ``x + ls * (pw1 -> dw3x3 -> pw2)(x)``.

    Args:
        channels (int): Channels.
        expand_ratio (int): Hidden channels = ``expand_ratio * channels``.
        **kwargs: ``norm_cfg``, ``act_cfg``, ``drop_path``,
            ``layer_scale_init_value``, ``with_cp`` and ``deploy`` of
            :class:`ResidualBlock`.
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


def _replace_child(root: nn.Module, old: nn.Module, new: nn.Module) -> None:
    """Replace the submodule ``old`` of ``root`` by ``new`` in place."""
    for name, module in root.named_modules():
        for child_name, child in module.named_children():
            if child is old:
                setattr(module, child_name, new)
                return
    raise KeyError(f'{type(old).__name__} is not a submodule')


class MobileViGBase(BaseModule):
    """A MobileViG-family backbone: a stem (two stride-2 3x3 convs) and four
    stages at strides 4, 8, 16 and 32, each a ``nn.Sequential`` whose first
    block downsamples (stages 1-3).

    Subclasses set :attr:`arch_settings` (presets of per-stage lists),
    :attr:`family_markers` (key fragments of their checkpoints that no other
    family has, for error messages), :meth:`_num_blocks`, :meth:`_make_stage`
    and :meth:`arch_from_state_dict`. Reference checkpoints of either family
    are converted as they load (:mod:`mvig2_mm.weights.converter`).

    Args:
        arch (str | dict): A preset name of :attr:`arch_settings`, or a dict
            with exactly a preset's keys, one entry per stage.
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
        drop_path_rate (float): Stochastic depth rate of the last block.
            Defaults to 0.
        drop_path_schedule (str): How the rate is spread over the blocks:
            ``'linear'`` from 0 to ``drop_path_rate`` over all blocks in
            order (the usual rule, e.g. of mmpretrain's and timm's models),
            or ``'reference'``, the rates the family's reference code gives
            each block (:meth:`drop_path_rates`). Defaults to ``'linear'``.
        layer_scale_init_value (float): Initial value of the layer scales.
            Defaults to 1e-5.
        expand_ratio (int): Hidden width of inverted residuals and FFNs.
            Defaults to 4.
        with_cp (bool): Gradient checkpointing per block (saves memory,
            costs a second forward). Defaults to False.
        efficient_conv_bn_eval (bool): "Tune mode" of every conv + frozen
            BatchNorm pair (mmcv's ``ConvModule``): while the norm is in eval
            mode (``norm_eval=True``, or the model in eval mode) the pair
            computes ``conv(x, W * s) + b'`` and the conv's output is not kept
            for the backward pass; results are the same. mmengine's
            ``efficient_conv_bn_eval = ['backbone']`` config key does the
            same by tracing the backbone with torch.fx. Defaults to False.
        deploy (bool): Build the inference form (norms and layer scales folded
            into convs). Defaults to False.
        init_cfg (dict | list[dict], optional): Initialisation config. A
            ``Pretrained`` entry may point at a converted checkpoint or at a
            reference one (recognised and converted on the fly). Defaults to
            Kaiming-normal convs with zero biases, as the reference.
    """

    arch_settings: Dict[str, Dict[str, list]] = {}
    family_markers: Tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        BACKBONE_FAMILIES[cls.__name__] = cls.family_markers

    def __init__(self,
                 arch: Arch = 'm',
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(type='GELU'),
                 drop_path_rate: float = 0.,
                 drop_path_schedule: str = 'linear',
                 layer_scale_init_value: float = 1e-5,
                 expand_ratio: int = 4,
                 with_cp: bool = False,
                 efficient_conv_bn_eval: bool = False,
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
        self.expand_ratio = expand_ratio

        c0 = self.channels[0]
        norm = None if deploy else norm_cfg
        self.stem = nn.Sequential(
            conv_module(in_channels, c0 // 2, 3, norm, act_cfg, stride=2,
                        padding=1),
            conv_module(c0 // 2, c0, 3, norm, act_cfg, stride=2, padding=1))
        drop_paths = self.drop_path_rates(drop_path_rate, drop_path_schedule)
        block_cfg = dict(norm_cfg=norm, act_cfg=act_cfg,
                         layer_scale_init_value=layer_scale_init_value,
                         with_cp=with_cp, deploy=deploy)
        self.stages = nn.ModuleList()
        for i, channels in enumerate(self.channels):
            blocks = [] if i == 0 else [conv_module(
                self.channels[i - 1], channels, 3, norm, None, stride=2,
                padding=1)]
            blocks += self._make_stage(i, drop_paths, block_cfg)
            self.stages.append(nn.Sequential(*blocks))
        self._freeze_stages()
        if efficient_conv_bn_eval:
            for module in self.modules():
                if isinstance(module, ConvModule):
                    module.turn_on_efficient_conv_bn_eval(True)
        # Reference checkpoints (published ImageNet, COCO and ADE20K files)
        # load as they are, through every loader: PyTorch's, mmengine's.
        self._register_load_state_dict_pre_hook(self._convert_reference_keys)
        if deploy:
            enable_fused_kernels(self)

    def _num_blocks(self) -> int:
        """How many blocks share the drop path rates."""
        raise NotImplementedError

    def drop_path_rates(self, rate: float, schedule: str) -> List[float]:
        """The drop path rate of every block, in the order they are built.

        Args:
            rate (float): The rate of the last block.
            schedule (str): ``'linear'`` (from 0 to ``rate`` over all
                blocks) or ``'reference'`` (the reference code's rates; see
                :meth:`_reference_drop_path_rates`).
        """
        if schedule not in ('linear', 'reference'):
            raise ValueError(f"drop_path_schedule must be 'linear' or "
                             f"'reference', got {schedule!r}")
        linear = torch.linspace(0, rate, self._num_blocks()).tolist()
        if schedule == 'linear':
            return linear
        return self._reference_drop_path_rates(linear)

    def _reference_drop_path_rates(self, linear: List[float]) -> List[float]:
        """The reference's rates, given the linear ones: the same unless a
        family's reference code spreads them otherwise."""
        return linear

    def _make_stage(self, index: int, drop_paths: List[float],
                    block_cfg: dict) -> List[nn.Module]:
        """The blocks of stage ``index`` after its downsampling conv; takes
        its drop path rates from the front of ``drop_paths``."""
        raise NotImplementedError

    @classmethod
    def arch_from_state_dict(cls, state_dict: Dict[str, torch.Tensor]
                             ) -> Optional[Dict[str, list]]:
        """The arch entries that a bare backbone state dict (converted keys)
        shows, or None when it holds no such backbone."""
        raise NotImplementedError

    @staticmethod
    def _convert_reference_keys(state_dict, prefix, *args) -> None:
        """Load pre-hook: rename reference-layout keys (of either family)
        under ``prefix``."""
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
                    f'{sorted(next(iter(cls.arch_settings.values())))}.')
            return copy.deepcopy(cls.arch_settings[key])
        if not isinstance(arch, dict):
            raise TypeError(f'arch must be a str or a dict, got '
                            f'{type(arch).__name__}')
        essential = set(next(iter(cls.arch_settings.values())))
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
        x = check_input(x, type(self).__name__)
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

    def train(self, mode: bool = True) -> 'MobileViGBase':
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
            if isinstance(module, ResidualBlock):
                module.switch_to_deploy()
        for module in list(self.modules()):  # stem and downsampling convs
            if isinstance(module, ConvModule) and module.with_norm:
                _replace_child(self, module, fuse_conv_module(module))
        self.deploy = True
        enable_fused_kernels(self)
