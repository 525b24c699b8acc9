"""What the export and analysis tools share: the network to export, its
names, writing and checking it as ONNX, and counting its parameters and
multiply-adds.

``build_export_model`` builds a MobileViGv2 classifier (logits) or backbone
(stage maps) from a config or an arch name, loads a checkpoint strictly and
converts it to the deploy form (norms, layer scales and the positional
encoding folded into convolutions; both classifiers merged).
"""
import argparse
import inspect
import os
import os.path as osp
import sys
import types
import warnings
from contextlib import contextmanager
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from ..models import MobileViGv2, imagenet_classifier_cfg
from ..models.backbones import BACKBONES
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


class DenseHeadOutputs(nn.Module):
    """A one-stage detector (RetinaNet, FCOS, ATSS, ...) as ``image -> the
    head's raw outputs``, level by level: ``cls_score_{l}``,
    ``bbox_pred_{l}`` (and ``score_factor_{l}``, e.g. FCOS's centerness).
    Decoding the boxes and the NMS, which ONNX cannot express as mmdet does
    them, stay outside the graph: :func:`detections_from_outputs` runs
    mmdet's own ``predict_by_feat`` on the outputs."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector
        with torch.no_grad():  # which outputs, on a small input
            groups = detector.bbox_head(
                detector.extract_feat(torch.zeros(1, 3, 64, 64)))
        self.groups = ('cls_score', 'bbox_pred', 'score_factor')[
            :len(groups)]
        self.levels = len(groups[0])

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        groups = self.detector.bbox_head(self.detector.extract_feat(x))
        return tuple(out for group in groups for out in group)


def detections_from_outputs(model: DenseHeadOutputs,
                            outputs: Sequence[torch.Tensor],
                            batch_img_metas: List[dict]) -> list:
    """mmdet's detections (``InstanceData`` per image: ``bboxes``,
    ``scores``, ``labels``, in the original image's coordinates) from the
    outputs of :class:`DenseHeadOutputs` (e.g. onnxruntime's)."""
    outputs = [torch.as_tensor(out) for out in outputs]
    groups = [outputs[i * model.levels:(i + 1) * model.levels]
              for i in range(len(model.groups))]
    with torch.no_grad():
        return model.detector.bbox_head.predict_by_feat(
            *groups, batch_img_metas=batch_img_metas, rescale=True)


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
    if isinstance(model, DenseHeadOutputs):
        return [f'{group}_{level}' for group in model.groups
                for level in range(model.levels)]
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
        SegLogits if _is_segmentor(model) else
        DenseHeadOutputs if _is_one_stage_detector(model) else None)
    if wrapper is None:
        raise ValueError(f'{osp.basename(config)} builds a '
                         f'{type(model).__name__}: the tools export '
                         f'classifiers, segmentors and one-stage detectors '
                         f'whole; export its backbone with --backbone-only')
    if checkpoint:
        load_checkpoint_strictly(model, checkpoint)
    return wrapper(switch_to_deploy(model.eval())).eval()


def _is_one_stage_detector(model: nn.Module) -> bool:
    try:
        from mmdet.models.detectors import SingleStageDetector
    except ImportError:
        return False
    return isinstance(model, SingleStageDetector)


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


# ---------------------------------------------------------------- ONNX
# Extra sizes checked by --verify --dynamic: batch 2; a stage-1 map of 8x8
# with K=8 (no shift along either axis); 5x9 (K > height); odd sizes.
DYNAMIC_CHECKS = ((2, 64, 64), (1, 40, 72), (1, 97, 131), (1, 256, 192))
TOLERANCE = 1e-4
# smallest dynamic height/width of each exporter (see the module docstring)
MIN_DYNAMIC_SIZE = dict(torchscript=32, dynamo=33)


def export(model: nn.Module, shape: Tuple[int, int], path: str,
           dynamic: bool = False, opset: Optional[int] = None,
           dynamo: bool = False) -> List[str]:
    """Write ``model`` (image -> tensor(s)) to ``path``; return the output
    names.

    Args:
        model (nn.Module): Image -> tensor(s), in eval mode.
        shape (tuple[int, int]): Example input height and width.
        path (str): The ``.onnx`` file to write.
        dynamic (bool): Dynamic batch, height and width.
        opset (int, optional): ONNX opset; 17, or 18 with ``dynamo``.
        dynamo (bool): Use the ``torch.export``-based exporter (needs
            onnxscript) instead of the TorchScript-based one.
    """
    import onnx  # noqa: F401  (needed by the exporter; a clear error early)
    if dynamo:
        import onnxscript  # noqa: F401  (the same)
    names = output_names(model)
    x = torch.randn(1, 3, *shape)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings(), exportable(model):
        warnings.filterwarnings('ignore', category=DeprecationWarning)
        warnings.filterwarnings('ignore', category=FutureWarning)
        if dynamo:
            dims = None
            if dynamic:
                dim = torch.export.Dim
                size = MIN_DYNAMIC_SIZE['dynamo']
                dims = ({0: dim('batch', min=1, max=1024),
                         2: dim('height', min=size, max=16384),
                         3: dim('width', min=size, max=16384)}, )
            torch.onnx.export(model, (x, ), path, input_names=['input'],
                              output_names=names, dynamo=True,
                              dynamic_shapes=dims, opset_version=opset or 18,
                              verbose=False)
            return names
        dynamic_axes = None
        if dynamic:
            dynamic_axes = {'input': {0: 'batch', 2: 'height', 3: 'width'}}
            for name in names:
                dynamic_axes[name] = {0: 'batch'} if name == 'logits' else {
                    0: 'batch', 2: f'{name}_height', 3: f'{name}_width'}
            if names == ['seg_logits']:  # at the input's size
                dynamic_axes['seg_logits'] = dynamic_axes['input']
        kwargs = {}
        if 'dynamo' in inspect.signature(torch.onnx.export).parameters:
            kwargs['dynamo'] = False  # the TorchScript exporter
        torch.onnx.export(
            model, (x, ), path, input_names=['input'], output_names=names,
            dynamic_axes=dynamic_axes, opset_version=opset or 17,
            do_constant_folding=True, **kwargs)
    return names


def verify(model: nn.Module, path: str,
           sizes: Sequence[Tuple[int, int, int]]) -> List[Tuple[tuple, float]]:
    """Run ``path`` with onnxruntime and ``model`` with PyTorch on random
    inputs of each (N, H, W). The difference of an output is its largest
    absolute difference, divided by its largest magnitude when that is above
    1. Returns (input shape, largest difference); raises ``AssertionError``
    where an output differs by more than 1e-4."""
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    report = []
    generator = torch.Generator().manual_seed(0)
    for batch, height, width in sizes:
        x = torch.randn(batch, 3, height, width, generator=generator)
        with torch.no_grad():
            expected = model(x)
        if isinstance(expected, torch.Tensor):
            expected = (expected, )
        outputs = session.run(None, {'input': x.numpy()})
        worst = 0.
        for name, out, exp in zip(session.get_outputs(), outputs, expected):
            exp = exp.numpy()
            if out.shape != exp.shape:
                raise AssertionError(
                    f'input {tuple(x.shape)}: ONNX {name.name} has shape '
                    f'{out.shape}, PyTorch {exp.shape}')
            scale = max(1., float(np.abs(exp).max()))
            diff = float(np.abs(out - exp).max()) / scale
            worst = max(worst, diff)
            if diff > TOLERANCE:
                raise AssertionError(
                    f'input {tuple(x.shape)}: ONNX and PyTorch {name.name} '
                    f'differ by {diff:.2e} (tolerance {TOLERANCE})')
        report.append((tuple(x.shape), worst))
    return report
