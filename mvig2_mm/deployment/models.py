"""The networks that the export tools write: a model of a config (or of a
variant) as a plain ``image -> tensor(s)`` module in its deploy form.

:func:`build_export_model` builds a classifier, segmentor, one-stage
detector or backbone, loads a checkpoint strictly and converts it to the
deploy form (norms, layer scales and the positional encoding folded into
convolutions; both classifiers merged), wrapped as :class:`Logits`,
:class:`SegLogits`, :class:`DenseHeadOutputs` or :class:`StageMaps`.
"""
import os.path as osp
import types
from contextlib import contextmanager
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from ..errors import ConfigError
from ..models import imagenet_classifier_cfg
from ..models.utils import switch_to_deploy
from ..weights import load_checkpoint_strictly, load_pretrained

__all__ = [
    'DenseHeadOutputs', 'Logits', 'SegLogits', 'StageMaps',
    'build_export_model', 'detections_from_outputs', 'exportable',
    'output_names'
]


class Logits(nn.Module):
    """A classifier as a plain ``image -> logits`` module.

    Args:
        classifier (nn.Module): An mmpretrain classifier.
    """

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x, mode='tensor')


class SegLogits(nn.Module):
    """A segmentor as ``image -> per-pixel class logits`` at the image's
    size, as mmseg's inference computes them (``encode_decode``: features,
    decode head, bilinear resize to the input size).

    The input is the normalised image batch, as the segmentor's data
    preprocessor makes it.

    Args:
        segmentor (nn.Module): An mmseg ``EncoderDecoder``.

    Attributes:
        fixed_size (tuple[int, int], optional): The output size as
            constants, for a graph of a fixed size (Core ML); None: the
            input's size, computed in the graph.
    """

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.segmentor = segmentor
        self.fixed_size: Optional[Tuple[int, int]] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.segmentor.decode_head(self.segmentor.extract_feat(x))
        return F.interpolate(logits, size=self.fixed_size or x.shape[2:],
                             mode='bilinear',
                             align_corners=self.segmentor.align_corners)


class DenseHeadOutputs(nn.Module):
    """A one-stage detector (RetinaNet, FCOS, ATSS, ...) as ``image -> the
    head's raw outputs``, level by level: ``cls_score_{l}``,
    ``bbox_pred_{l}`` (and ``score_factor_{l}``, e.g. FCOS's centerness).

    Decoding the boxes and the NMS, which ONNX cannot express as mmdet does
    them, stay outside the graph: :func:`detections_from_outputs` runs
    mmdet's own ``predict_by_feat`` on the outputs.

    Args:
        detector (nn.Module): An mmdet ``SingleStageDetector``.

    Attributes:
        groups (tuple[str]): The kinds of output the head gives.
        levels (int): The number of feature levels.
    """

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


class StageMaps(nn.Module):
    """A backbone as ``image -> (stage maps)``.

    Args:
        backbone (nn.Module): A MobileViG-family backbone.
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(self.backbone(x))


def detections_from_outputs(model: DenseHeadOutputs,
                            outputs: Sequence[torch.Tensor],
                            batch_img_metas: List[dict]) -> list:
    """mmdet's detections from the outputs of :class:`DenseHeadOutputs`
    (e.g. onnxruntime's).

    Args:
        model (DenseHeadOutputs): The exported model (its head decodes).
        outputs (Sequence): The outputs, in the order of
            :func:`output_names` (tensors or arrays).
        batch_img_metas (list[dict]): The images' meta information, as
            mmdet's data samples hold it (``img_shape``, ``scale_factor``,
            ...).

    Returns:
        list[InstanceData]: Per image: ``bboxes``, ``scores``, ``labels``, in
        the original image's coordinates.
    """
    outputs = [torch.as_tensor(out) for out in outputs]
    groups = [outputs[i * model.levels:(i + 1) * model.levels]
              for i in range(len(model.groups))]
    with torch.no_grad():
        return model.detector.bbox_head.predict_by_feat(
            *groups, batch_img_metas=batch_img_metas, rescale=True)


def output_names(model: nn.Module) -> List[str]:
    """The names of the outputs of an export model, in order."""
    if isinstance(model, StageMaps):
        return [f'stage{i}' for i in model.backbone.out_indices]
    if isinstance(model, SegLogits):
        return ['seg_logits']
    if isinstance(model, DenseHeadOutputs):
        return [f'{group}_{level}' for group in model.groups
                for level in range(model.levels)]
    return ['logits']


def _upsample_in_graph(self, x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=self.scale_factor, mode=self.mode,
                         align_corners=self.align_corners)


@contextmanager
def exportable(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` made traceable at every input size while the context is
    open.

    mmseg's ``Upsample`` computes its output size in Python
    (``int(size * scale_factor)``), so a traced graph would keep the example
    input's size; an integer scale factor is applied as
    ``F.interpolate(x, scale_factor=...)`` instead: the same output size and
    the same values, computed in the graph. The modules are restored when
    the context closes.

    Args:
        model (nn.Module): The model to trace or export.

    Yields:
        nn.Module: ``model`` itself.
    """
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


def build_export_model(config: Optional[str] = None,
                       arch: Optional[str] = None,
                       checkpoint: Optional[str] = None,
                       backbone_only: bool = False,
                       backbone: str = 'MobileViGv2') -> nn.Module:
    """The deploy-form network to export, in eval mode on the CPU.

    Args:
        config (str, optional): A model config file (classification,
            segmentation, a one-stage detector; any with
            ``backbone_only``). Give either it or ``arch``.
        arch (str, optional): A variant (``'ti'``, ``'s'``, ``'m'``,
            ``'b'``): its ImageNet classifier, or its backbone.
        checkpoint (str, optional): Weights (path or URL), loaded strictly:
            a checkpoint of the config's model, a published (reference)
            checkpoint, or a deploy-form one with a deploy config. With
            ``backbone_only``, any file that holds the backbone. None: the
            weights are random.
        backbone_only (bool): Export the backbone (its stage maps).
        backbone (str): The family of ``arch``: ``'MobileViGv2'`` or
            ``'MobileViG'``; a config names its own.

    Returns:
        nn.Module: :class:`Logits` of a classifier, :class:`SegLogits` of a
        segmentor, :class:`DenseHeadOutputs` of a one-stage detector, or
        :class:`StageMaps` of the backbone (``backbone_only``).

    Raises:
        ConfigError: The config's model is none of these (e.g. a two-stage
            detector without ``backbone_only``).
        CheckpointMismatchError: ``checkpoint`` does not fit the model.
        FileNotFoundError: No such ``config`` or ``checkpoint``.
    """
    if (config is None) == (arch is None):
        raise ValueError('give either config or arch')
    if config is not None:
        if not osp.isfile(config):
            raise FileNotFoundError(f'config file not found: {config}')
        cfg = Config.fromfile(config)
        init_default_scope(cfg.get('default_scope', 'mmpretrain'))
        model_cfg = cfg.model.copy()
        if model_cfg.get('backbone', {}).get('init_cfg'):
            model_cfg.backbone.init_cfg = None  # weights: the checkpoint
    else:
        init_default_scope('mmpretrain')
        model_cfg = (dict(type=backbone, arch=arch) if backbone_only
                     else imagenet_classifier_cfg(arch, backbone=backbone))
    from mmpretrain.models.classifiers import BaseClassifier
    model = MODELS.build(model_cfg)
    if backbone_only:
        model = getattr(model, 'backbone', model)
        if checkpoint:  # any layout holding a MobileViG-family backbone
            load_pretrained(model, checkpoint)
        return StageMaps(switch_to_deploy(model.eval())).eval()
    wrapper = Logits if isinstance(model, BaseClassifier) else (
        SegLogits if _is_segmentor(model) else
        DenseHeadOutputs if _is_one_stage_detector(model) else None)
    if wrapper is None:
        raise ConfigError(
            f'{osp.basename(config)} builds a {type(model).__name__}: '
            f'classifiers, segmentors and one-stage detectors are exported '
            f'whole; export its backbone (backbone_only=True, '
            f'--backbone-only in the tools)')
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
