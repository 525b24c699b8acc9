"""What the MobileViG backbones share: the cyclic shifts of their graph
convolutions, the inverted residual block, and the backbone itself (arch
presets, stem, stages, out_indices, freezing, drop path rates, gradient
checkpointing, pretrained loading, deploy form). Each family's module adds
its own graph blocks and stage layout (:mod:`.mobilevig`,
:mod:`.mobilevigv2`)."""
import copy
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ...errors import ConfigError
from ...weights import (convert_backbone_on_load_, load_pretrained,
                        pretrained_cfg)
from ..utils.fusion import fold_conv_module

ConfigType = Dict
Arch = Union[str, Dict[str, list]]


def shifted(x: torch.Tensor, shift: int, dim: int) -> torch.Tensor:
    """``x`` shifted cyclically by ``shift`` along ``dim`` as the reference
    graph convolutions slice it: ``torch.roll(x, shift, dim)`` (element
    ``r`` of the result is element ``(r - shift) mod L`` of ``x``) when
    ``|shift| < L``, else ``x`` itself (``torch.roll`` would wrap a longer
    shift around)."""
    return torch.roll(x, shift, dim) if abs(shift) < x.shape[dim] else x


def shifted_in_graph(x: torch.Tensor, shift: int, dim: int) -> torch.Tensor:
    """:func:`shifted` for a captured graph (ONNX, ``torch.export``,
    ``torch.compile``): at a size the graph fixes, two slices concatenated
    (:func:`rolled`); otherwise a gather whose index the graph computes from
    the size of ``x``, so that the graph is right for every input size
    rather than for the one it was captured at."""
    size = static_size(x, dim)
    if size is not None:
        return rolled(x, shift, dim) if abs(shift) < size else x
    length = size_in_graph(x, dim)
    index = torch.arange(length, device=x.device)
    # a tensor condition: one on a symbolic size would fix the size
    shift = torch.where(length_tensor(length, index) > abs(shift), shift, 0)
    return x.index_select(dim, wrap_index(index - shift, length))


def static_size(x: torch.Tensor, dim: int) -> Optional[int]:
    """The size of ``x`` along ``dim`` where a captured graph fixes it: a
    plain int under ``torch.export`` / ``torch.compile`` at a static size;
    None where the size is symbolic, and under the TorchScript tracer (its
    ints are the example's, a graph of every size needs the gathers)."""
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return None
    size = x.shape[dim]
    return size if type(size) is int else None


def rolled(x: torch.Tensor, shift: int, dim: int) -> torch.Tensor:
    """``torch.roll(x, shift, dim)`` as two slices of ``x`` concatenated,
    their bounds Python ints: the export form of a shift at a fixed size,
    which delegates such as ExecuTorch's XNNPACK take whole in float (a
    gather with a computed index stays outside, and ExecuTorch's portable
    integer ``remainder`` truncates like C).

    In 8 bits, PT2E's XNNPACK quantizer gives the concatenation the range
    of its first slice, so XNNPACK leaves the slices (whose input and
    output ranges differ) to the portable kernels. The forms without that
    were tried: ``cat([x, x])`` is refused by XNNPACK (one input node), and
    a window of ``cat([x, x[:L - s]])`` lowers whole but fails at run time
    in ExecuTorch 1.5 (a static output resized to another shape)."""
    length = x.shape[dim]
    shift %= length
    if shift == 0:
        return x
    return torch.cat([x.narrow(dim, length - shift, shift),
                      x.narrow(dim, 0, length - shift)], dim)


def size_in_graph(x: torch.Tensor, dim: int) -> Union[int, torch.Tensor]:
    """The size of ``x`` along ``dim`` for index arithmetic in a captured
    graph. The TorchScript tracer (ONNX's older exporter) records an int
    read from a shape as a constant, so there it is a tensor that follows
    the size; torch.compile and torch.export follow the int itself (a
    symbolic one where the size varies), and inductor cannot give a tensor
    a shape computed from another tensor's values."""
    if torch.jit.is_tracing():
        return torch.zeros((), dtype=torch.long, device=x.device) + \
            x.shape[dim]
    return x.shape[dim]


def length_tensor(length: Union[int, torch.Tensor],
                  index: torch.Tensor) -> torch.Tensor:
    """``length`` (from :func:`size_in_graph`) as a 0-d tensor of
    ``index``'s dtype and device."""
    if torch.is_tensor(length):
        return length
    return torch.full((), length, dtype=index.dtype, device=index.device)


def wrap_index(index: torch.Tensor,
               length: Union[int, torch.Tensor]) -> torch.Tensor:
    """``index`` modulo the axis' ``length`` (from :func:`size_in_graph`):
    the cyclic wrap of shifted indices, the divisor a tensor (ONNX's
    dynamo-based exporter cannot take a symbolic size as ``remainder``'s
    scalar)."""
    return torch.remainder(index, length_tensor(length, index))


def every_shift_in_graph(x: torch.Tensor, hop: int,
                         dim: int) -> torch.Tensor:
    """``x`` and its cyclic shifts by ``hop, 2 hop, ...`` (each shorter than
    the axis) along ``dim``, stacked in a new dimension ``dim``:
    ``out.select(dim, i)`` is ``torch.roll(x, i * hop, dim)``. For a
    captured graph: at a size the graph fixes, the shifts as slices
    (:func:`rolled`); otherwise one gather whose count and indices the
    graph computes from the size of ``x``, so that it is right for every
    size (the eager code loops over ``range(hop, L, hop)``)."""
    size = x.shape[dim]
    if static_size(x, dim) is not None:
        return torch.stack([rolled(x, shift, dim)
                            for shift in range(0, size, hop)], dim)
    length = size_in_graph(x, dim)
    count = (length - 1) // hop + 1
    shifts = torch.arange(count, device=x.device) * hop  # 0, K, 2K, ...
    index = wrap_index(
        torch.arange(length, device=x.device)[None, :] - shifts[:, None],
        length)
    # int32 indices: Core ML's gather takes no other (ONNX's takes both)
    gathered = x.index_select(dim, index.flatten().to(torch.int32))
    shape = list(x.shape)
    shape[dim:dim + 1] = [-1, size]
    return gathered.reshape(shape)


def conv_norm(in_channels: int, out_channels: int, kernel_size: int,
              norm_cfg: ConfigType, act_cfg: Optional[ConfigType],
              deploy: bool = False, **kwargs) -> ConvModule:
    """conv -> norm (-> activation), the conv with a bias as the reference
    checkpoints have it (its bias-before-norm warning is expected here and
    silenced); in the deploy form the norm is folded into the conv: no
    norm."""
    if deploy:
        return ConvModule(in_channels, out_channels, kernel_size, bias=True,
                          norm_cfg=None, act_cfg=act_cfg, **kwargs)
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', 'Unnecessary conv bias')
        return ConvModule(in_channels, out_channels, kernel_size, bias=True,
                          norm_cfg=norm_cfg, act_cfg=act_cfg, **kwargs)


@dataclass(frozen=True)
class BlockConfig:
    """What the blocks of one backbone share, and the layers they make of
    it.

    Attributes:
        norm_cfg (dict): Norm layer config.
        act_cfg (dict): Activation config.
        layer_scale_init_value (float): Initial layer scales.
        deploy (bool): The inference form: norms and layer scales folded
            into the convs.
    """
    norm_cfg: ConfigType = field(default_factory=lambda: dict(type='BN'))
    act_cfg: ConfigType = field(default_factory=lambda: dict(type='GELU'))
    layer_scale_init_value: float = 1e-5
    deploy: bool = False

    def conv(self, in_channels: int, out_channels: int, kernel_size: int,
             act: bool = True, **kwargs) -> ConvModule:
        """conv -> norm (-> activation) (:func:`conv_norm`)."""
        return conv_norm(in_channels, out_channels, kernel_size,
                         self.norm_cfg, self.act_cfg if act else None,
                         self.deploy, **kwargs)

    def layer_scale(self, channels: int) -> Optional[nn.Parameter]:
        """A learnable per-channel scale of a residual branch, shape
        (C, 1, 1); None in the deploy form (folded into the branch's last
        conv)."""
        if self.deploy:
            return None
        return nn.Parameter(self.layer_scale_init_value *
                            torch.ones(channels, 1, 1))


def scaled(branch: torch.Tensor,
           scale: Optional[torch.Tensor]) -> torch.Tensor:
    """``scale * branch``; ``branch`` itself once the scale is folded."""
    return branch if scale is None else scale * branch


def drop_path(rate: float) -> nn.Module:
    return DropPath(rate) if rate > 0 else nn.Identity()


class GraphConv(nn.Module):
    """A graph convolution of the family: ``nn(concat([x, x_j]))``, with
    ``x_j`` the aggregated neighbours of each node (:meth:`aggregate`: each
    family's own graph) and ``nn`` a 1x1 conv, norm and activation.

    Args:
        channels (int): Channels C.
        hop (int): The graph's step K.
        cfg (BlockConfig): Norm, activation and form of the blocks.
        out_channels (int, optional): Output channels. Defaults to C.
    """

    def __init__(self, channels: int, hop: int, cfg: BlockConfig,
                 out_channels: Optional[int] = None) -> None:
        super().__init__()
        self.hop = hop
        self.nn = cfg.conv(2 * channels, out_channels or channels, 1)

    def aggregate(self, x: torch.Tensor) -> torch.Tensor:
        """``x_j`` of every node, of the shape of ``x``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nn(torch.cat([x, self.aggregate(x)], dim=1))


class InvertedResidual(nn.Module):
    """Inverted residual block: ``x + ls * pw2(dw3x3(pw1(x)))``.

    Args:
        channels (int): Channels.
        expand_ratio (int): Hidden channels = ``expand_ratio * channels``.
            Defaults to 4.
        drop_path_rate (float): Drop path rate. Defaults to 0.
        cfg (BlockConfig, optional): Norm, activation, initial layer scale
            and form (the deploy form has the norms and the layer scale
            folded into the convs). Defaults to ``BlockConfig()``.
    """

    def __init__(self, channels: int, expand_ratio: int = 4,
                 drop_path_rate: float = 0.,
                 cfg: Optional[BlockConfig] = None) -> None:
        super().__init__()
        cfg = cfg or BlockConfig()
        hidden = channels * expand_ratio
        self.deploy = cfg.deploy
        self.pw1 = cfg.conv(channels, hidden, 1)
        self.dw = cfg.conv(hidden, hidden, 3, padding=1, groups=hidden)
        self.pw2 = cfg.conv(hidden, channels, 1, act=False)
        self.layer_scale_1 = cfg.layer_scale(channels)
        self.drop_path = drop_path(drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.pw2(self.dw(self.pw1(x)))
        return x + self.drop_path(scaled(branch, self.layer_scale_1))

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Fold the norms into the convs and the layer scale into ``pw2``."""
        if self.deploy:
            return
        self.pw1 = fold_conv_module(self.pw1)
        self.dw = fold_conv_module(self.dw)
        self.pw2 = fold_conv_module(self.pw2, self.layer_scale_1)
        self.layer_scale_1 = None
        self.deploy = True


class MobileViGBase(BaseModule):
    """A MobileViG-family backbone: a stem (two stride-2 3x3 convs) and four
    stages at strides 4, 8, 16 and 32, each a ``nn.Sequential`` whose first
    block downsamples (stages 1-3).

    Subclasses set :attr:`arch_settings` (presets of per-stage lists) and
    define :meth:`_num_blocks`, :meth:`_make_stage` and
    :meth:`arch_from_state_dict`. Reference checkpoints of every family are
    converted as they load (:mod:`mvig2_mm.weights`).

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
        norm_cfg (dict): Norm layer config, a BatchNorm type (``'BN'``,
            ``'SyncBN'``, ...). Defaults to ``dict(type='BN')``.
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
            raise ConfigError(
                f'frozen_stages must be in [-1, {self.num_stages}] '
                f'(-1: none, 0: stem, k: stem and the first k stages), '
                f'got {frozen_stages}')
        if not 0 <= drop_path_rate < 1:
            raise ConfigError(f'drop_path_rate must be in [0, 1), '
                              f'got {drop_path_rate}')
        if not isinstance(norm_cfg, dict) or 'type' not in norm_cfg:
            raise ConfigError(
                f'norm_cfg must be a BatchNorm config such as '
                f"dict(type='BN') (the deploy form folds it: deploy=True), "
                f'got {norm_cfg!r}')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.deploy = deploy
        self.with_cp = with_cp
        self.expand_ratio = expand_ratio
        drop_paths = self.drop_path_rates(drop_path_rate, drop_path_schedule)
        self.drop_path_rate = drop_path_rate

        c0 = self.channels[0]
        cfg = BlockConfig(norm_cfg, act_cfg, layer_scale_init_value, deploy)
        self.stem = nn.Sequential(
            cfg.conv(in_channels, c0 // 2, 3, stride=2, padding=1),
            cfg.conv(c0 // 2, c0, 3, stride=2, padding=1))
        self.stages = nn.ModuleList()
        for i, channels in enumerate(self.channels):
            blocks = [] if i == 0 else [cfg.conv(
                self.channels[i - 1], channels, 3, act=False, stride=2,
                padding=1)]  # downsampling
            blocks += self._make_stage(i, drop_paths, cfg)
            self.stages.append(nn.Sequential(*blocks))
        self._freeze_stages()
        if efficient_conv_bn_eval:
            for module in self.modules():
                if isinstance(module, ConvModule):
                    module.turn_on_efficient_conv_bn_eval(True)
        # Reference checkpoints (published ImageNet, COCO and ADE20K files)
        # load as they are, through every loader: PyTorch's, mmengine's.
        self._register_load_state_dict_pre_hook(self._convert_reference_keys)

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
            raise ConfigError(f"drop_path_schedule must be 'linear' or "
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
                    cfg: BlockConfig) -> List[nn.Module]:
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
        """Load pre-hook: rename reference-layout keys (of any family) under
        ``prefix``."""
        convert_backbone_on_load_(state_dict, prefix)

    @classmethod
    def parse_arch(cls, arch: Arch) -> Dict[str, list]:
        """Return the arch dict for a preset name or a user dict."""
        if isinstance(arch, str):
            key = arch.lower()
            if key not in cls.arch_settings:
                raise ConfigError(
                    f'Unavailable arch {arch!r}. Choose one of '
                    f'{sorted(cls.arch_settings)} or pass a dict with the '
                    f'keys '
                    f'{sorted(next(iter(cls.arch_settings.values())))}.')
            return copy.deepcopy(cls.arch_settings[key])
        if not isinstance(arch, dict):
            raise ConfigError(f'arch must be a str or a dict, got '
                              f'{type(arch).__name__}')
        essential = set(next(iter(cls.arch_settings.values())))
        missing, extra = essential - set(arch), set(arch) - essential
        if missing or extra:
            raise ConfigError(
                f'A custom arch dict needs exactly the keys '
                f'{sorted(essential)}'
                + (f'; missing {sorted(missing)}' if missing else '')
                + (f'; unknown {sorted(extra)}' if extra else '') + '.')
        lengths = {k: len(v) for k, v in arch.items()}
        if len(set(lengths.values())) != 1:
            raise ConfigError(f'All arch entries need one value per stage, '
                              f'got lengths {lengths}.')
        return {k: list(v) for k, v in arch.items()}

    def _parse_out_indices(
            self, out_indices: Union[int, Sequence[int]]) -> Tuple[int, ...]:
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        if not isinstance(out_indices, Sequence) or not out_indices:
            raise ConfigError(f'out_indices must be an int or a non-empty '
                              f'sequence of ints, got {out_indices!r}')
        parsed = []
        for index in out_indices:
            if not isinstance(index, int) or not (
                    -self.num_stages <= index < self.num_stages):
                raise ConfigError(
                    f'Invalid out_indices {list(out_indices)}: each must be '
                    f'an int in [{-self.num_stages}, {self.num_stages - 1}] '
                    f'for {self.num_stages} stages.')
            parsed.append(index % self.num_stages)
        return tuple(parsed)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if isinstance(x, torch.fx.Proxy):  # traced by Tune mode's config key
            self._check_traceable()
        elif x.dim() != 4:
            raise ValueError(f'{type(self).__name__} expects an (N, C, H, W) '
                             f'tensor, got shape {tuple(x.shape)}')
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            for block in stage:
                if self.with_cp and x.requires_grad:
                    x = cp.checkpoint(block, x, use_reentrant=False)
                else:
                    x = block(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _check_traceable(self) -> None:
        """torch.fx fixes Python control flow in the graph it records: a
        traced backbone would keep drop path and checkpointing as they were
        while tracing, in training and in evaluation alike."""
        if self.with_cp or self.drop_path_rate > 0:
            raise ConfigError(
                'efficient_conv_bn_eval (Tune mode) traces the backbone '
                'with torch.fx, which fixes with_cp and drop path in the '
                'graph: set with_cp=False and drop_path_rate=0, or use the '
                'backbone argument efficient_conv_bn_eval=True')

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
                if isinstance(module, _BatchNorm):  # SyncBatchNorm too
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
        """Convert to the inference form in place (outputs unchanged): every
        block folds its norms and layer scales into its convs, and so do the
        stem and the downsampling convs."""
        if self.deploy:
            return
        self.stem = nn.Sequential(*map(fold_conv_module, self.stem))
        for stage in self.stages:
            for index, block in enumerate(stage):
                if isinstance(block, ConvModule):  # downsampling
                    stage[index] = fold_conv_module(block)
                else:
                    block.switch_to_deploy()
        self.deploy = True
