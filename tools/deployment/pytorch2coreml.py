"""Convert a MobileViGv2 or MobileViG model (deploy form) to Core ML.

    python tools/deployment/pytorch2coreml.py \\
        configs/classification/mvig2_m_in1k.py \\
        --checkpoint work_dirs/mvig2_m_in1k/epoch_300.pth \\
        --out mvig2_m.mlpackage
    python tools/deployment/pytorch2coreml.py \\
        configs/segmentation/semfpn_mvig2_m.py --checkpoint fpn_m.pth \\
        --shape 512 --out semfpn_mvig2_m.mlpackage

The model is converted to its deploy form (as for ONNX), traced at a fixed
input size (``--shape``, default 224x224, batch 1) and converted with
coremltools to an ML program (``.mlpackage``; float16 compute by default, as
the paper's iPhone NPU numbers; the precision is stated in the metadata).

As apps consume them (``--input image``, the default for classifiers and
segmentors): one input ``image``, an RGB picture of H x W (Core ML's
``ImageType``). The model's normalisation ``(pixel - mean) / std`` is folded
in: the input's scale (``1 / mean(std)``) and per-channel bias
(``-mean / mean(std)``), and the per-channel rest of ``1 / std`` into the
first convolution's weights (exact). A classifier returns ``classLabel``
and the softmax scores of its classes, with its class names attached
(``ClassifierConfig``; Core ML names the scores ``classLabel_probs``); a
segmentor returns ``seg_logits`` (1, classes, H, W),
per-pixel class logits at the input's size, its class names in the metadata.
Author, license, input size, mean/std and precision are in the metadata.

``--input tensor`` (and ``--backbone-only``) keeps a float tensor input
``input`` (1, 3, H, W: the image normalised as in training) and the outputs
``logits``, ``seg_logits`` or ``stage0`` .. ``stage3``. The tool checks the
converted model's inputs and outputs against the PyTorch model; running a
prediction needs macOS (coremltools cannot run models on Linux). Needs
``coremltools`` (``pip install -e .[deploy]``).
"""
import copy
import json
import os
import os.path as osp
import shutil
import sys
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config

from mvig2_mm.apis.swap_backbone import IMAGENET_MEAN, IMAGENET_STD
from mvig2_mm.cli import launcher
from mvig2_mm.cli.export import (Logits, SegLogits, check_model_args,
                                 export_parser, exportable, model_from_args,
                                 output_names)


def parse_args(argv=None):
    parser = export_parser(__doc__)
    parser.add_argument('--out', required=True,
                        help='the .mlpackage to write')
    parser.add_argument('--precision', choices=['float16', 'float32'],
                        default='float16',
                        help='compute precision. Defaults to float16.')
    parser.add_argument('--input', choices=['image', 'tensor'],
                        help='an RGB picture with the normalisation folded '
                        'in (default for classifiers and segmentors), or a '
                        'normalised float tensor (default with '
                        '--backbone-only)')
    args = parser.parse_args(argv)
    args.shape = check_model_args(parser, args)
    if args.input is None:
        args.input = 'tensor' if args.backbone_only else 'image'
    if args.input == 'image' and args.backbone_only:
        parser.error('--input image makes an app-facing classifier or '
                     'segmentor; a backbone takes --input tensor')
    if not args.out.endswith('.mlpackage'):
        parser.error('--out must end in .mlpackage (an ML program)')
    return args


class Probabilities(nn.Module):
    """A classifier's softmax scores (what Core ML's classifiers return)."""

    def __init__(self, logits: Logits) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x).softmax(dim=1)


def image_scale_and_bias(mean: Sequence[float], std: Sequence[float]
                         ) -> Tuple[float, List[float], List[float]]:
    """Core ML's ``ImageType`` computes ``pixel * scale + bias[c]`` with one
    scale: ``(scale, bias, rest)`` with ``scale = 1 / mean(std)``, ``bias =
    -mean * scale`` and ``rest[c] = mean(std) / std[c]``, so that
    ``(pixel * scale + bias[c]) * rest[c] == (pixel - mean[c]) / std[c]``."""
    std_mean = sum(std) / len(std)
    scale = 1 / std_mean
    return (scale, [-m * scale for m in mean],
            [std_mean / s for s in std])


def fold_channel_scale(model: nn.Module, rest: Sequence[float]) -> nn.Module:
    """A copy of ``model`` whose first convolution multiplies its input
    channel ``c`` by ``rest[c]`` (folded into its weights: exact)."""
    model = copy.deepcopy(model)  # the caller's model stays as it is
    conv = next(m for m in model.modules()
                if isinstance(m, nn.Conv2d) and m.in_channels == len(rest))
    with torch.no_grad():
        conv.weight.mul_(torch.tensor(rest).reshape(1, -1, 1, 1))
    return model


def convert(model: nn.Module, shape: Tuple[int, int],
            precision: str = 'float16', image: Optional[dict] = None):
    """Trace ``model`` at (1, 3, H, W) and convert it to a Core ML program.

    Args:
        image (dict, optional): For an RGB picture input: ``mean``, ``std``
            (in pixel units) and, for a classifier, ``classes``.
    """
    import coremltools as ct
    model = copy.deepcopy(model)  # the fixed size below stays with the copy
    example = torch.zeros(1, 3, *shape)
    names = output_names(model)
    inputs = [ct.TensorType(name='input', shape=example.shape)]
    classifier = None
    if image is not None:
        scale, bias, rest = image_scale_and_bias(image['mean'], image['std'])
        model = fold_channel_scale(model, rest)
        inputs = [ct.ImageType(name='image', shape=example.shape,
                               scale=scale, bias=bias,
                               color_layout=ct.colorlayout.RGB)]
        if isinstance(model, Logits):
            model, names = Probabilities(model).eval(), ['probabilities']
            classifier = ct.ClassifierConfig(
                list(image['classes']), predicted_feature_name='classLabel')
    for module in model.modules():  # Core ML graphs have a fixed size
        if isinstance(module, SegLogits):
            module.fixed_size = tuple(shape)
    with torch.no_grad(), warnings.catch_warnings(), exportable(model):
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        traced = torch.jit.trace(model, example)
    return ct.convert(
        traced, inputs=inputs,
        outputs=[ct.TensorType(name=name) for name in names],
        classifier_config=classifier, convert_to='mlprogram',
        compute_precision=(ct.precision.FLOAT16 if precision == 'float16'
                           else ct.precision.FLOAT32))


def image_meta(config: Optional[str]) -> dict:
    """Mean, std (pixel units) and class names of a config's model (a
    config without them, or ``--arch``: ImageNet's)."""
    meta = dict(mean=IMAGENET_MEAN, std=IMAGENET_STD, classes=None)
    if config is None:
        from mmpretrain.datasets import ImageNet
        meta['classes'] = ImageNet.METAINFO['classes']
        return meta
    cfg = Config.fromfile(config)
    preprocessor = cfg.model.get('data_preprocessor') or cfg.get(
        'data_preprocessor') or {}
    if preprocessor.get('mean') and preprocessor.get('std'):
        meta.update(mean=list(preprocessor['mean']),
                    std=list(preprocessor['std']))
    meta['classes'] = launcher.config_dataset_meta(cfg).get('classes')
    return meta


def describe(mlmodel, args, meta: Optional[dict]) -> None:
    """Author, license, input size, normalisation, precision, classes."""
    mlmodel.author = 'mvig2_mm (MobileViGv2 / MobileViG for OpenMMLab)'
    mlmodel.license = 'Apache-2.0'
    mlmodel.short_description = (
        'MobileViG-family model in its deploy form, converted by '
        'tools/deployment/pytorch2coreml.py')
    info = mlmodel.user_defined_metadata
    info['input_size'] = f'{args.shape[0]}x{args.shape[1]}'
    info['compute_precision'] = args.precision
    info['input'] = args.input
    if meta is not None:
        info['mean'] = json.dumps(meta['mean'])
        info['std'] = json.dumps(meta['std'])
        if meta.get('classes'):
            info['classes'] = json.dumps(list(meta['classes']))


def spec_shapes(mlmodel) -> Tuple[Dict[str, list], Dict[str, list]]:
    """(inputs, outputs) of a converted model's spec: name -> shape (an
    image: ``['RGB', H, W]``; a class label or probabilities: its type)."""
    description = mlmodel.get_spec().description

    def shapes(features):
        found = {}
        for f in features:
            kind = f.type.WhichOneof('Type')
            if kind == 'imageType':
                found[f.name] = ['RGB' if f.type.imageType.colorSpace == 20
                                 else f.type.imageType.colorSpace,
                                 f.type.imageType.height,
                                 f.type.imageType.width]
            elif kind == 'multiArrayType':
                found[f.name] = list(f.type.multiArrayType.shape)
            else:
                found[f.name] = kind
        return found
    return shapes(description.input), shapes(description.output)


def check(mlmodel, model: nn.Module, shape: Tuple[int, int],
          image: bool = False) -> None:
    """Raise ``AssertionError`` unless the spec's names and shapes are those
    of ``model`` on a (1, 3, H, W) input."""
    with torch.no_grad():
        expected = model(torch.zeros(1, 3, *shape))
    if isinstance(expected, torch.Tensor):
        expected = (expected, )
    inputs, outputs = spec_shapes(mlmodel)
    want_in = {'image': ['RGB', *shape]} if image else {
        'input': [1, 3, *shape]}
    want_out = {name: list(out.shape)
                for name, out in zip(output_names(model), expected)}
    if image and isinstance(model, Logits):
        want_out = {'classLabel': 'stringType',
                    'classLabel_probs': 'dictionaryType'}
    if inputs != want_in or outputs != want_out:
        raise AssertionError(f'Core ML spec has inputs {inputs} and outputs '
                             f'{outputs}; expected {want_in} and {want_out}')


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import coremltools  # noqa: F401
    except ImportError:
        print('error: coremltools is not installed (pip install -e .[deploy])',
              file=sys.stderr)
        return 1
    model = model_from_args(args, 'converting')
    if model is None:
        return 1
    meta = None
    if args.input == 'image':
        if not isinstance(model, (Logits, SegLogits)):
            print('error: --input image is for classifiers and segmentors',
                  file=sys.stderr)
            return 1
        meta = image_meta(args.config)
        if isinstance(model, Logits) and not meta.get('classes'):
            print('error: the config names no classes for the classifier '
                  '(test_dataloader.dataset); use --input tensor',
                  file=sys.stderr)
            return 1
    mlmodel = convert(model, args.shape, args.precision, meta)
    describe(mlmodel, args, meta)
    try:
        check(mlmodel, model, args.shape, image=meta is not None)
    except AssertionError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    if osp.exists(args.out):
        shutil.rmtree(args.out)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    mlmodel.save(args.out)
    inputs, outputs = spec_shapes(mlmodel)
    print(f'Wrote {args.out} ({args.precision}): inputs {inputs}, outputs '
          f'{outputs}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
