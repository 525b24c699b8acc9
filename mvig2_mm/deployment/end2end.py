"""A detector or segmentor exported whole, the OpenMMLab way: mmdeploy's
conversion to ONNX Runtime (:func:`convert`), the exported model run through
mmdeploy's ONNX Runtime wrapper (:func:`backend_model`) and evaluated in
mmdeploy's test Runner (:func:`build_test_runner`), and its predictions
compared with mmdet's / mmseg's ``predict`` (:func:`compare_predictions`).

mmdeploy's own pipeline (``mmdeploy.apis.torch2onnx``) loads the checkpoint
with mmengine's non-strict loader; here the model is built, loaded strictly
(published layouts converted on load, :mod:`mvig2_mm.weights`) and turned
into its deploy form before mmdeploy's exporter (``mmdeploy.apis.onnx.export``
with mmdeploy's rewriters) writes it. The deploy configs are the project's
(``configs/deployment/``, :func:`deploy_config_path`); mmdeploy runs with the
compatibility patches of :mod:`.mmdeploy_compat`, only while converting.
"""
import copy
import os
import os.path as osp
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import Runner

from ..errors import ConfigError
from ..models.utils import switch_to_deploy
from ..weights import load_checkpoint_strictly
from .mmdeploy_compat import check_mmdeploy, mmdeploy_patched
from .models import exportable

__all__ = [
    'Conversion', 'DEPLOY_CONFIG_DIR', 'MatchReport', 'backend_model',
    'build_model', 'build_test_runner', 'compare_predictions', 'convert',
    'deploy_config_path', 'example_input', 'pipeline_size', 'predict'
]

#: The project's mmdeploy deploy configs (``configs/deployment/``, as the
#: installed package holds them).
DEPLOY_CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                             '.mim', 'configs', 'deployment')


@dataclass
class Conversion:
    """What :func:`convert` wrote.

    Attributes:
        onnx_file (str): The ONNX model (``end2end.onnx``).
        deploy_cfg (Config): The deploy config.
        model_cfg (Config): The model config.
        seconds (float): The time the ONNX export took.
        torch_model (nn.Module): The PyTorch model that was converted,
            before its deploy form (the reference to compare with).
        sdk_files (list[str]): mmdeploy's SDK metadata files.
    """
    onnx_file: str
    deploy_cfg: Config
    model_cfg: Config
    seconds: float
    torch_model: nn.Module
    sdk_files: List[str] = field(default_factory=list)


def deploy_config_path(model_cfg: Config) -> str:
    """The project's deploy config for a model config: instance
    segmentation (a detector with a mask head), detection, or segmentation,
    to ONNX Runtime with dynamic sizes.

    Raises:
        ConfigError: The config is no mmdet or mmseg model.
    """
    scope = model_cfg.get('default_scope')
    if scope == 'mmdet':
        masks = 'mask_head' in (model_cfg.model.get('roi_head') or {})
        name = ('instance-seg' if masks else 'detection')
    elif scope == 'mmseg':
        name = 'segmentation'
    else:
        raise ConfigError(
            f"the config's default_scope is {scope!r}: mmdeploy conversion "
            f'takes mmdet and mmseg models (classifiers: '
            f'tools/deployment/pytorch2onnx.py)')
    return osp.join(DEPLOY_CONFIG_DIR, f'{name}_onnxruntime_dynamic.py')


def build_model(model_cfg: Config, checkpoint: Optional[str],
                deploy: bool = True) -> nn.Module:
    """The config's model on the CPU in eval mode, the checkpoint loaded
    strictly (published layouts as they are), in its deploy form with
    ``deploy``.

    Raises:
        CheckpointMismatchError: ``checkpoint`` does not fit the model.
    """
    cfg = model_cfg.model.copy()
    if cfg.get('backbone', {}).get('init_cfg'):
        cfg.backbone.init_cfg = None  # the weights: the checkpoint
    with DefaultScope.overwrite_default_scope(model_cfg.default_scope):
        model = MODELS.build(cfg)
    if checkpoint:
        load_checkpoint_strictly(model, checkpoint)
    model.eval()
    return switch_to_deploy(model) if deploy else model


def _load_configs(config: Union[str, Config],
                  deploy_config: Optional[Union[str, Config]]):
    model_cfg = config if isinstance(config, Config) else Config.fromfile(
        config)
    if deploy_config is None:
        deploy_config = deploy_config_path(model_cfg)
    deploy_cfg = deploy_config if isinstance(
        deploy_config, Config) else Config.fromfile(deploy_config)
    return deploy_cfg, model_cfg


def example_input(shape: Sequence[int]) -> np.ndarray:
    """A BGR image (H, W, 3) to trace the model with: smooth random
    colours, reproducible."""
    rng = np.random.RandomState(0)
    height, width = shape
    small = rng.randint(0, 256, (max(height // 16, 1), max(width // 16, 1),
                                 3)).astype(np.uint8)
    import cv2
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def convert(config: Union[str, Config],
            checkpoint: Optional[str],
            out_dir: str,
            deploy_config: Optional[Union[str, Config]] = None,
            image: Optional[Union[str, np.ndarray]] = None,
            sdk: bool = True) -> Conversion:
    """Convert a detection or segmentation model to ONNX Runtime with
    mmdeploy.

    Args:
        config (str | Config): The model config.
        checkpoint (str, optional): Its weights (a checkpoint of the
            config's model or a published file), loaded strictly. None:
            random weights.
        out_dir (str): Where ``end2end.onnx`` (and the SDK metadata) go.
        deploy_config (str | Config, optional): An mmdeploy deploy config;
            default: :func:`deploy_config_path`.
        image (str | np.ndarray, optional): The image to trace with, through
            the config's test pipeline; default: :func:`example_input` of
            the pipeline's size (it resizes anyway).
        sdk (bool): Also write mmdeploy's SDK metadata (``deploy.json``,
            ``pipeline.json``, ``detail.json``), for ``mmdeploy_runtime``.

    Returns:
        Conversion: The files and configs.

    Raises:
        MMDeployVersionError: mmdeploy is missing or of another version.
        ConfigError: The config is no mmdet / mmseg model.
        CheckpointMismatchError: ``checkpoint`` does not fit the model.
    """
    check_mmdeploy()
    from mmdeploy.apis.onnx import export
    from mmdeploy.apis.utils import build_task_processor
    from mmdeploy.utils import (get_backend, get_dynamic_axes, get_input_shape,
                                get_onnx_config)

    from . import mmdeploy_rewriters  # noqa: F401 (registers the RPN's)

    deploy_cfg, model_cfg = _load_configs(config, deploy_config)
    resize = _resize_step(model_cfg)
    if sdk and resize not in (None, 'Resize'):
        raise ConfigError(
            f"mmdeploy's SDK pipeline has no {resize} (the config's test "
            f'pipeline): convert without the SDK metadata (sdk=False, '
            f'--no-sdk); the ONNX model runs through mmdeploy\'s Python '
            f'wrapper (tools/infer.py --backend onnxruntime)')
    os.makedirs(out_dir, exist_ok=True)
    onnx_cfg = get_onnx_config(deploy_cfg)
    with mmdeploy_patched():
        # a copy: mmdeploy's create_input edits the config's test pipeline
        processor = build_task_processor(copy.deepcopy(model_cfg),
                                         deploy_cfg, 'cpu')
        torch_model = build_model(model_cfg, checkpoint, deploy=False)
        model = switch_to_deploy(copy.deepcopy(torch_model))
        if image is None:
            image = example_input(pipeline_size(model_cfg))
        data, inputs = processor.create_input(
            image, get_input_shape(deploy_cfg),
            data_preprocessor=model.data_preprocessor)
        if isinstance(inputs, list) and len(inputs) == 1:
            inputs = inputs[0]
        names = onnx_cfg['input_names'] + onnx_cfg['output_names']
        prefix = osp.join(out_dir, osp.splitext(onnx_cfg['save_file'])[0])
        start = time.perf_counter()
        with exportable(model):  # mmseg's Upsample: sizes in the graph
            export(model, inputs, output_path_prefix=prefix,
                   backend=get_backend(deploy_cfg).value,
                   input_metas=dict(data_samples=data['data_samples'],
                                    mode='predict'),
                   context_info=dict(deploy_cfg=deploy_cfg),
                   input_names=onnx_cfg['input_names'],
                   output_names=onnx_cfg['output_names'],
                   opset_version=onnx_cfg.get('opset_version', 11),
                   dynamic_axes=get_dynamic_axes(deploy_cfg, names),
                   keep_initializers_as_inputs=onnx_cfg.get(
                       'keep_initializers_as_inputs', False),
                   optimize=onnx_cfg.get('optimize', False))
        seconds = time.perf_counter() - start
    result = Conversion(prefix + '.onnx', deploy_cfg, model_cfg, seconds,
                        torch_model)
    if sdk:
        from mmdeploy.backend.sdk.export_info import export2SDK

        # copies: it edits the configs (the SDK's pipeline)
        export2SDK(copy.deepcopy(deploy_cfg), copy.deepcopy(model_cfg),
                   out_dir, pth=checkpoint or '', device='cpu')
        result.sdk_files = [
            osp.join(out_dir, f'{name}.json')
            for name in ('deploy', 'pipeline', 'detail')]
    return result


def _test_pipeline(model_cfg: Config) -> list:
    return model_cfg.get('test_pipeline') or model_cfg.get(
        'test_dataloader', {}).get('dataset', {}).get('pipeline', [])


def _resize_step(model_cfg: Config) -> Optional[str]:
    """The type of the test pipeline's resize step (None: none)."""
    for step in _test_pipeline(model_cfg):
        if 'Resize' in step.get('type', ''):
            return step['type']
    return None


def pipeline_size(model_cfg: Config) -> Sequence[int]:
    """(H, W) of the test pipeline's resize (default 512 x 512)."""
    for step in _test_pipeline(model_cfg):
        scale = step.get('scale') if 'Resize' in step.get('type',
                                                          '') else None
        if scale:
            width, height = (scale, scale) if isinstance(scale, int) \
                else scale
            return min(width, height), max(width, height)
    return 512, 512


def backend_model(onnx_file: str, model_cfg: Config,
                  deploy_cfg: Optional[Config] = None) -> nn.Module:
    """The exported model run with ONNX Runtime through mmdeploy's wrapper
    (its task's ``End2EndModel``): ``test_step(data)`` predicts as the
    PyTorch model does.

    Args:
        onnx_file (str): The model :func:`convert` wrote.
        model_cfg (Config): Its model config.
        deploy_cfg (Config, optional): The deploy config it was converted
            with; default: the project's of the task
            (:func:`deploy_config_path`).

    Raises:
        MMDeployVersionError: mmdeploy is missing or of another version.
        ConfigError: The config is no mmdet / mmseg model.
    """
    return _backend(onnx_file, model_cfg, deploy_cfg)[1]


def _backend(onnx_file: str, model_cfg: Config,
             deploy_cfg: Optional[Config]) -> Tuple[object, nn.Module]:
    """mmdeploy's task processor of the model and its backend model."""
    check_mmdeploy()
    from mmdeploy.apis.utils import build_task_processor
    deploy_cfg, model_cfg = _load_configs(model_cfg, deploy_cfg)
    processor = build_task_processor(model_cfg, deploy_cfg, 'cpu')
    return processor, processor.build_backend_model(
        [onnx_file], processor.update_data_preprocessor)


def build_test_runner(onnx_file: str, model_cfg: Config,
                      deploy_cfg: Optional[Config] = None) -> Runner:
    """mmengine's Runner that tests the exported model as mmdeploy's own
    ``tools/test.py`` does: :func:`backend_model` in mmdeploy's test runner
    (``DeployTestRunner``, built by the task processor), with the config's
    test dataloader, evaluator, hooks and visualizer; ``runner.test()``
    evaluates it.

    mmdeploy's graph takes the padded batch as its only input: the boxes
    of an image smaller than its batch's padded size (its resized size not
    a multiple of the padding, or a batch of several sizes) are clipped to
    that size, where mmdet clips to the image's own (docs/deployment.md).

    Args:
        onnx_file (str): The model :func:`convert` wrote.
        model_cfg (Config): Its model config, with ``work_dir`` (the logs).
        deploy_cfg (Config, optional): The deploy config it was converted
            with; default: the project's of the task.

    Raises:
        MMDeployVersionError: mmdeploy is missing or of another version.
        ConfigError: The config is no mmdet / mmseg model.
    """
    processor, model = _backend(onnx_file, model_cfg, deploy_cfg)
    return processor.build_test_runner(model, model_cfg.work_dir)


def predict(model: nn.Module, model_cfg: Config, deploy_cfg: Config,
            images: Sequence[Union[str, np.ndarray]]) -> list:
    """``model``'s predictions (mmdet / mmseg data samples) for
    ``images``, each through the config's test pipeline as mmdeploy
    prepares it, one at a time."""
    from mmdeploy.apis.utils import build_task_processor
    from mmdeploy.utils import get_input_shape
    processor = build_task_processor(model_cfg, deploy_cfg, 'cpu')
    preds = []
    for image in images:
        data, _ = processor.create_input(image, get_input_shape(deploy_cfg))
        with torch.no_grad():
            preds.extend(model.test_step(data))
    return preds


@dataclass
class MatchReport:
    """How the predictions of an exported model agree with PyTorch's
    (:func:`compare_predictions`).

    Attributes:
        images (int): Images compared.
        expected (int): PyTorch's detections scoring at least the
            threshold (segmentation: pixels).
        matched (int): Those with a detection of the same label, IoU at
            least ``min_iou`` and a score within ``score_tol``.
        extra (int): The exported model's detections above the threshold
            (plus ``score_tol``) that match none of PyTorch's.
        worst_iou (float): The lowest IoU of a same-label pair (each
            expected detection with its best partner; 0: none).
        worst_score_diff (float): The largest score difference of those
            pairs.
        worst_mask_agreement (float): The lowest share of agreeing mask
            pixels of those pairs, inside the union of their boxes
            (segmentation: of all pixels; 1.0 without masks).
        unmatched (list[str]): What did not match, one line each.
        pixels (bool): Segmentation: ``expected`` and ``matched`` count
            pixels.
    """
    images: int = 0
    expected: int = 0
    matched: int = 0
    extra: int = 0
    worst_iou: float = 1.0
    worst_score_diff: float = 0.0
    worst_mask_agreement: float = 1.0
    unmatched: List[str] = field(default_factory=list)
    pixels: bool = False

    def passed(self, min_mask_agreement: float = 0.99) -> bool:
        """Whether every detection matched, none is extra and the masks
        agree on at least ``min_mask_agreement`` of their pixels."""
        return (self.matched == self.expected and not self.extra
                and self.worst_mask_agreement >= min_mask_agreement)

    def summary(self) -> str:
        """One line."""
        if self.pixels:
            return (f'{self.images} image(s): the same class at '
                    f'{self.matched}/{self.expected} pixels, worst image '
                    f'{100 * self.worst_mask_agreement:.2f}%')
        return (f'{self.images} image(s): {self.matched}/{self.expected} '
                f'matched, {self.extra} extra; worst IoU '
                f'{self.worst_iou:.4f}, score difference '
                f'{self.worst_score_diff:.1e}, mask agreement '
                f'{100 * self.worst_mask_agreement:.2f}%')


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of each box in ``a`` (N, 4) with each in ``b`` (M, 4)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-9)


def _instances(sample, score_thr: float) -> Dict[str, np.ndarray]:
    inst = sample.pred_instances
    keep = (inst.scores >= score_thr).cpu().numpy()
    out = dict(bboxes=inst.bboxes.cpu().numpy()[keep],
               scores=inst.scores.cpu().numpy()[keep],
               labels=inst.labels.cpu().numpy()[keep])
    if 'masks' in inst:
        out['masks'] = inst.masks.cpu().numpy().astype(bool)[keep]
    return out


def _mask_agreement(a: np.ndarray, b: np.ndarray, box_a: np.ndarray,
                    box_b: np.ndarray) -> float:
    x0, y0 = np.floor(np.minimum(box_a[:2], box_b[:2])).astype(int)
    x1, y1 = np.ceil(np.maximum(box_a[2:], box_b[2:])).astype(int)
    x0, y0 = max(x0, 0), max(y0, 0)
    region_a, region_b = a[y0:y1 + 1, x0:x1 + 1], b[y0:y1 + 1, x0:x1 + 1]
    if not region_a.size:
        return 1.0
    return float((region_a == region_b).mean())


def compare_predictions(expected: list, actual: list,
                        score_thr: float = 0.3, min_iou: float = 0.99,
                        score_tol: float = 1e-3) -> MatchReport:
    """Compare an exported model's predictions with PyTorch's, image by
    image.

    Detections (mmdet ``pred_instances``): each of PyTorch's scoring at
    least ``score_thr`` is matched with the exported model's detection of
    the same label of the highest IoU; it matches when that IoU is at least
    ``min_iou`` and the scores differ by at most ``score_tol``; masks are
    compared inside the union of the two boxes. Segmentation (mmseg
    ``pred_sem_seg``): the share of pixels of the same class.

    Args:
        expected (list): PyTorch's data samples.
        actual (list): The exported model's, for the same images.
        score_thr (float): The detections compared. Defaults to 0.3.
        min_iou (float): Defaults to 0.99.
        score_tol (float): Defaults to 1e-3.

    Returns:
        MatchReport: The counts and worst differences.
    """
    report = MatchReport(images=len(expected))
    for index, (exp, act) in enumerate(zip(expected, actual)):
        if 'pred_sem_seg' in exp:
            a = exp.pred_sem_seg.data.cpu().numpy()
            b = act.pred_sem_seg.data.cpu().numpy()
            agree = float((a == b).mean())
            report.pixels = True
            report.expected += a.size
            report.matched += int((a == b).sum())
            report.worst_mask_agreement = min(report.worst_mask_agreement,
                                              agree)
            continue
        e, a = _instances(exp, score_thr), _instances(act, score_thr -
                                                      score_tol)
        report.expected += len(e['labels'])
        used = np.zeros(len(a['labels']), bool)
        ious = _box_iou(e['bboxes'], a['bboxes'])
        for i, label in enumerate(e['labels']):
            same = (a['labels'] == label) & ~used
            if not same.any():
                report.worst_iou = 0.
                report.unmatched.append(f'image {index}: label {label} '
                                        f'score {e["scores"][i]:.3f}: none')
                continue
            j = int(np.argmax(np.where(same, ious[i], -1)))
            iou, diff = float(ious[i, j]), abs(float(e['scores'][i] -
                                                     a['scores'][j]))
            report.worst_iou = min(report.worst_iou, iou)
            report.worst_score_diff = max(report.worst_score_diff, diff)
            if 'masks' in e and 'masks' in a:
                report.worst_mask_agreement = min(
                    report.worst_mask_agreement,
                    _mask_agreement(e['masks'][i], a['masks'][j],
                                    e['bboxes'][i], a['bboxes'][j]))
            if iou >= min_iou and diff <= score_tol:
                used[j] = True
                report.matched += 1
            else:
                report.unmatched.append(
                    f'image {index}: label {label} score '
                    f'{e["scores"][i]:.3f}: IoU {iou:.3f}, score '
                    f'{a["scores"][j]:.3f}')
        report.extra += int((~used & (a['scores'] >= score_thr + score_tol)
                             ).sum())
    return report
