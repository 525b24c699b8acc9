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
``coremltools`` (``pip install -e .[deploy]``). The conversion itself is
``mvig2_mm.deployment.coreml``. A mistake of the user's ends the tool with
one line (``--debug``: its traceback too).
"""
import json
import os
import os.path as osp
import shutil
import sys
from typing import Optional

from mmengine.config import Config

from mvig2_mm.apis.swap_backbone import IMAGENET_MEAN, IMAGENET_STD
from mvig2_mm.cli import launcher
from mvig2_mm.cli.export import (check_model_args, export_parser,
                                 model_from_args)
from mvig2_mm.cli.tool import ToolError, tool_main
from mvig2_mm.deployment import Logits, SegLogits
from mvig2_mm.deployment.coreml import check, convert, spec_shapes

PROG = 'tools/deployment/pytorch2coreml.py'


def parse_args(argv=None):
    parser = export_parser(PROG, __doc__)
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


@tool_main(PROG)
def main(argv=None) -> int:
    """Convert with the command line ``argv`` (default: ``sys.argv[1:]``).
    """
    args = parse_args(argv)
    try:
        import coremltools  # noqa: F401
    except ImportError as e:
        raise ToolError('coremltools is not installed (pip install -e '
                        '.[deploy])') from e
    model = model_from_args(args, 'converting')
    meta = None
    if args.input == 'image':
        if not isinstance(model, (Logits, SegLogits)):
            raise ToolError('--input image is for classifiers and '
                            'segmentors; use --input tensor')
        meta = image_meta(args.config)
        if isinstance(model, Logits) and not meta.get('classes'):
            raise ToolError('the config names no classes for the classifier '
                            '(test_dataloader.dataset); use --input tensor')
    mlmodel = convert(model, args.shape, args.precision, meta)
    describe(mlmodel, args, meta)
    try:
        check(mlmodel, model, args.shape, image=meta is not None)
    except AssertionError as e:
        raise ToolError(f'the converted model does not match: {e}') from e
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
