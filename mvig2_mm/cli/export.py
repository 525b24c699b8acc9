"""What the export and analysis tools share: the network to export, its
names, and counting its parameters and multiply-adds.

``build_export_model`` builds a MobileViGv2 classifier (logits) or backbone
(stage maps) from a config or an arch name, loads a checkpoint strictly and
converts it to the deploy form (norms, layer scales and the positional
encoding folded into convolutions; both classifiers merged).
"""
import argparse
import os.path as osp
import sys
import types
from contextlib import contextmanager
from typing import Iterator, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from ..models import MobileViGv2, imagenet_classifier_cfg
from ..models.classifiers.presets import BACKBONES
from ..models.utils import switch_to_deploy
from ..weights import load_checkpoint_strictly, load_pretrained

ARCHS = tuple(MobileViGv2.arch_settings)


def export_parser(doc: str) -> argparse.ArgumentParser:
    """The argument parser of an export tool whose module docstring is
    ``doc`` (first paragraph: description, the rest: epilog), with the
    model arguments."""
    parser = argparse.ArgumentParser(
        description=doc.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n\n'.join(doc.split('\n\n')[1:]))
    add_model_args(parser)
    return parser


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The model arguments of both export tools."""
    parser.add_argument('config', nargs='?',
                        help='model config (classification; detection or '
                        'segmentation with --backbone-only)')
    parser.add_argument('--arch', choices=ARCHS,
                        help='a variant instead of a config (ImageNet '
                        'classifier, or the backbone)')
    parser.add_argument('--backbone', default='MobileViGv2',
                        choices=list(BACKBONES),
                        help='the family of --arch (default: MobileViGv2)')
    parser.add_argument('--checkpoint',
                        help='weights: an mmpretrain/mmdet/mmseg checkpoint '
                        'of the config, a published (reference) checkpoint, '
                        'or a deploy-form one with a deploy config. Without '
                        'it the weights are random (for trying the tool).')
    parser.add_argument('--backbone-only', action='store_true',
                        help='export the backbone (its stage maps)')
    parser.add_argument('--shape', type=int, nargs='+', default=[224],
                        help='example input size: one int (square) or H W. '
                        'Defaults to 224.')


def check_model_args(parser: argparse.ArgumentParser,
                     args: argparse.Namespace) -> Tuple[int, int]:
    """Validate the model arguments; return the input (H, W)."""
    if bool(args.config) == bool(args.arch):
        parser.error('give either a config file or --arch')
    if args.config and not osp.isfile(args.config):
        parser.error(f'config file not found: {args.config}')
    if args.checkpoint and '://' not in args.checkpoint and not osp.isfile(
            args.checkpoint):
        parser.error(f'checkpoint not found: {args.checkpoint}')
    if len(args.shape) not in (1, 2) or min(args.shape) < 32:
        parser.error('--shape takes one or two sizes of at least 32')
    return tuple(args.shape * 2 if len(args.shape) == 1 else args.shape)


class Logits(nn.Module):
    """A classifier as a plain ``image -> logits`` module."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x, mode='tensor')


class SegLogits(nn.Module):
    """A segmentor as ``image -> per-pixel class logits`` at the image's
    size, as mmseg's inference computes them (``encode_decode``: features,
    decode head, bilinear resize to the input size). The input is the
    normalised image batch, as the segmentor's data preprocessor makes it.
    """

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.segmentor = segmentor
        # a fixed-size graph (Core ML) takes the output size as constants
        self.fixed_size: Optional[Tuple[int, int]] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.segmentor.decode_head(self.segmentor.extract_feat(x))
        return F.interpolate(logits, size=self.fixed_size or x.shape[2:],
                             mode='bilinear',
                             align_corners=self.segmentor.align_corners)


def _upsample_in_graph(self, x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=self.scale_factor, mode=self.mode,
                         align_corners=self.align_corners)


@contextmanager
def exportable(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` made traceable at every input size while the context is
    open. mmseg's ``Upsample`` computes its output size in Python
    (``int(size * scale_factor)``), so a traced graph would keep the example
    input's size; an integer scale factor is applied as
    ``F.interpolate(x, scale_factor=...)`` instead: the same output size and
    the same values, computed in the graph."""
    try:
        from mmseg.models.utils.wrappers import Upsample
    except ImportError:
        yield model
        return
    patched = [m for m in model.modules() if isinstance(m, Upsample)
               and not m.size and isinstance(m.scale_factor, float)
               and m.scale_factor.is_integer()]
    for module in patched:
        module.forward = types.MethodType(_upsample_in_graph, module)
    try:
        yield model
    finally:
        for module in patched:
            del module.forward


class StageMaps(nn.Module):
    """A backbone as ``image -> (stage maps)``."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(self.backbone(x))


def output_names(model: nn.Module) -> List[str]:
    if isinstance(model, StageMaps):
        return [f'stage{i}' for i in model.backbone.out_indices]
    if isinstance(model, SegLogits):
        return ['seg_logits']
    return ['logits']


def build_export_model(config: Optional[str] = None,
                       arch: Optional[str] = None,
                       checkpoint: Optional[str] = None,
                       backbone_only: bool = False,
                       backbone: str = 'MobileViGv2') -> nn.Module:
    """The deploy-form network to export, in eval mode on the CPU.

    ``backbone`` is the family (``'MobileViGv2'`` or ``'MobileViG'``) of
    ``arch``; a config names its own.

    Returns:
        nn.Module: :class:`Logits` of a classifier, :class:`SegLogits` of a
        segmentor, or :class:`StageMaps` of the backbone (``backbone_only``;
        a detector's config must say so).
    """
    if config is not None:
        cfg = Config.fromfile(config)
        init_default_scope(cfg.get('default_scope', 'mmpretrain'))
        model_cfg = cfg.model.copy()
        if 'teacher' in model_cfg:
            model_cfg.teacher = None  # a distillation teacher only trains
        if model_cfg.get('backbone', {}).get('init_cfg'):
            model_cfg.backbone.init_cfg = None  # weights: --checkpoint
    else:
        init_default_scope('mmpretrain')
        model_cfg = (dict(type=backbone, arch=arch) if backbone_only
                     else imagenet_classifier_cfg(arch, backbone=backbone))
    from mmpretrain.models.classifiers import BaseClassifier
    model = MODELS.build(model_cfg)
    if backbone_only:
        model = getattr(model, 'backbone', model)
        if checkpoint:  # any layout holding a MobileViGv2 backbone
            load_pretrained(model, checkpoint)
        return StageMaps(switch_to_deploy(model.eval())).eval()
    wrapper = Logits if isinstance(model, BaseClassifier) else (
        SegLogits if _is_segmentor(model) else None)
    if wrapper is None:
        raise ValueError(f'{osp.basename(config)} builds a '
                         f'{type(model).__name__}: the tools export '
                         f'classifiers and segmentors whole; export its '
                         f'backbone with --backbone-only')
    if checkpoint:
        load_checkpoint_strictly(model, checkpoint)
    return wrapper(switch_to_deploy(model.eval())).eval()


def _is_segmentor(model: nn.Module) -> bool:
    try:
        from mmseg.models.segmentors import EncoderDecoder
    except ImportError:
        return False
    return isinstance(model, EncoderDecoder)


def model_from_args(args: argparse.Namespace,
                    verb: str) -> Optional[nn.Module]:
    """:func:`build_export_model` from the parsed model arguments, for a
    tool's ``main``: on bad input prints a one-line error and returns None;
    warns when no checkpoint gives the weights."""
    try:
        model = build_export_model(args.config, args.arch, args.checkpoint,
                                   args.backbone_only, args.backbone)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f'error: {e}', file=sys.stderr)
        return None
    if not args.checkpoint:
        print(f'warning: no --checkpoint, {verb} random weights',
              file=sys.stderr)
    return model


def count(model: nn.Module, shape: Tuple[int, int]) -> Tuple[int, int]:
    """Return (params, MACs) of ``model`` for one (1, 3, H, W) input."""
    from mmengine.analysis import FlopAnalyzer
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        analyzer = FlopAnalyzer(model, (torch.zeros(1, 3, *shape), ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        macs = analyzer.total()
    return params, macs
