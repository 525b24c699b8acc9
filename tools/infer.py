#!/usr/bin/env python3
"""Run a trained MobileViGv2 detector, segmentor or classifier on images.

One tool for the three tasks: the config's ``default_scope`` picks the
library's own inferencer (mmdet ``DetInferencer``, mmseg ``MMSegInferencer``,
mmpretrain ``ImageClassificationInferencer``).

    python tools/infer.py CONFIG CHECKPOINT IMAGE_OR_DIR --out-dir DIR
        [--device cpu] [--score-thr 0.3] [--batch-size 1] [--compile]
        [--cfg-options KEY=VALUE ...] [--debug]

What it writes under ``DIR`` (``NAME`` is the input's file name, ``STEM``
without its extension):

- detection: ``vis/NAME`` (boxes, masks and labels of the predictions scoring
  at least ``--score-thr``) and ``preds/STEM.json`` (all predictions);
- segmentation: ``vis/NAME`` (the classes' colours blended over the image)
  and ``pred/STEM.png`` (the class id of every pixel);
- classification: ``vis/STEM.png`` (the image with the predicted class and
  score) and ``preds/STEM.json`` (label, class name, score, all scores).

Class names come from the checkpoint's ``meta.dataset_meta`` (every
checkpoint that mmengine's ``Runner`` writes has them; mmdet 2.x / mmseg 0.x
``CLASSES``), else from the config's test dataset.

The model is built once, by the library's inferencer (without weights); the
checkpoint is checked against it and loaded strictly: a file that does not
set every weight stops the tool with one line instead of predicting with
random weights. ``--compile`` compiles the model with ``torch.compile``.
A mistake of the user's ends the tool with one line
``tools/infer.py: error: ...`` (``--debug``: its traceback too).
"""
import argparse
import json
import os
import os.path as osp
import sys
import warnings
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import DefaultScope

# registers MobileViGv2 and allow-lists mmengine checkpoints for torch.load
import mvig2_mm  # noqa: F401,E402
from mvig2_mm.cli import backends, launcher
from mvig2_mm.cli.checkpoints import backbone_form_mismatch, read_checkpoint
from mvig2_mm.cli.images import list_images
from mvig2_mm.cli.tool import ToolError, add_debug_argument, tool_main
from mvig2_mm.weights import (check_checkpoint, dataset_meta_of,
                              load_checkpoint_strictly)

PROG = 'tools/infer.py'
SCOPES = ('mmdet', 'mmseg', 'mmpretrain')
# a classifier's input is small; its picture is enlarged to this short side
# so that the drawn label stays legible
CLS_VIS_SHORT_SIDE = 224
# what the inferencers warn when they are built without weights (loaded
# here right after)
NO_WEIGHTS_WARNINGS = ('Checkpoint is not loaded', 'weights is None',
                       'palette does not exist')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description='Predict with a model with a MobileViGv2 '
        'backbone (mmdet, mmseg or mmpretrain config) and save pictures of '
        'the predictions')
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', help='checkpoint file (path or URL)')
    parser.add_argument('inputs', metavar='IMAGE_OR_DIR',
                        help='an image, or a folder of images')
    parser.add_argument('--out-dir', required=True,
                        help='folder for the pictures and predictions')
    parser.add_argument('--device', default=None,
                        help="e.g. 'cpu' or 'cuda:0' (default: cuda:0 when "
                        'available, else cpu)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detection: draw the predictions scoring at '
                        'least this (default: 0.3)')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--compile', action='store_true',
                        help=launcher.COMPILE_HELP)
    backends.add_backend_argument(parser)
    parser.add_argument(
        '--cfg-options', nargs='+', action=launcher.StrictDictAction,
        help='override config settings, as key=value pairs')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def load_config(args: argparse.Namespace) -> Config:
    if args.backend == 'onnxruntime':
        return load_onnxruntime_config(args)
    if osp.isfile(args.config) and not (launcher.is_url(args.checkpoint)
                                        or osp.isfile(args.checkpoint)):
        raise ToolError(f'checkpoint file not found: {args.checkpoint}')
    cfg = launcher.read_config(args.config, args.cfg_options)
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise ToolError(f"the config's default_scope is {scope!r}; {PROG} "
                        f'runs mmdet, mmseg and mmpretrain models')
    mismatch = backbone_form_mismatch(cfg.get('model', {}), args.checkpoint)
    if mismatch:
        raise ToolError(mismatch)
    return cfg


def load_onnxruntime_config(args: argparse.Namespace) -> Config:
    """The config, for a model converted by mmdeploy_convert.py into the
    folder ``args.checkpoint``."""
    cfg = launcher.read_config(args.config, args.cfg_options)
    backends.check_onnxruntime(cfg, args.checkpoint, args.compile)
    return cfg


def use_onnxruntime(inferencer, cfg: Config, folder: str) -> None:
    """Replace the inferencer's PyTorch model with the ONNX Runtime model
    in ``folder`` (mmdeploy's wrapper; the project's deploy config of the
    task), keeping its class names."""
    from mvig2_mm.deployment.end2end import backend_model
    model = backend_model(osp.join(folder, backends.ONNX_FILE), cfg)
    model.dataset_meta = inferencer.model.dataset_meta
    inferencer.model = model


def open_checkpoint(path: str) -> Optional[dict]:
    """The content of a local checkpoint, memory-mapped (only the key names
    and shapes are read for the check; the weights are read once, when they
    are loaded); None for a URL."""
    if launcher.is_url(path):
        return None
    try:
        checkpoint = read_checkpoint(path)
    except ValueError as e:
        raise ToolError(str(e)) from e
    if not isinstance(checkpoint, dict):
        raise ToolError(f'cannot load checkpoint {path}: not a dict of '
                        f'weights')
    return checkpoint


def load_weights(model: nn.Module, path: str,
                 checkpoint: Optional[dict]) -> dict:
    """Load the checkpoint ``path`` into ``model``, strictly (the
    inferencers load non-strictly); return its ``meta``. A local file
    (``checkpoint``: its content) is checked before its weights are read.

    Raises:
        CheckpointMismatchError: The file does not set every weight of
            ``model``, or brings others.
    """
    if checkpoint is not None:
        check_checkpoint(model, checkpoint, f'checkpoint {path}')
    return load_checkpoint_strictly(model, path).get('meta') or {}


def class_names(cfg: Config, meta: dict) -> dict:
    """Classes (and palette) of the predictions: the checkpoint's
    ``meta`` (``dataset_meta``, or mmdet 2.x / mmseg 0.x ``CLASSES``), else
    the config's test dataset."""
    found = dataset_meta_of(meta)
    if found:
        return {key.lower(): value for key, value in found.items()}
    return launcher.config_dataset_meta(cfg)


def without_weights(build: Callable):
    """Build an inferencer without weights, quietly (they are loaded right
    after: :func:`load_weights`)."""
    with warnings.catch_warnings():
        for message in NO_WEIGHTS_WARNINGS:
            warnings.filterwarnings('ignore', message=message)
        return build()


# ------------------------------------------------------------ per task
def build_det(cfg: Config, args: argparse.Namespace):
    from mmdet.apis import DetInferencer
    return without_weights(lambda: DetInferencer(
        model=cfg, weights=None, device=args.device, show_progress=False))


def infer_det(inferencer, cfg: Config, args: argparse.Namespace,
              images: List[str], names: dict) -> List[str]:
    # the palette: the config's (the inferencer's choice), else the names'
    dataset_meta = dict(inferencer.model.dataset_meta)
    if names.get('classes'):
        dataset_meta['classes'] = tuple(names['classes'])
    if dataset_meta.get('palette') in (None, 'random') and \
            names.get('palette') is not None:
        dataset_meta['palette'] = names['palette']
    inferencer.model.dataset_meta = dataset_meta
    inferencer.visualizer.dataset_meta = dataset_meta
    # mmdet's visualizer jitters each mask's colour with numpy's global
    # random numbers (jitter_color): seeded, the same predictions draw the
    # same pictures, run after run and with either backend
    import numpy as np
    np.random.seed(0)
    results = inferencer(images, batch_size=args.batch_size,
                         out_dir=args.out_dir, pred_score_thr=args.score_thr,
                         no_save_pred=False)
    classes = dataset_meta['classes']
    for image, pred in zip(images, results['predictions']):
        kept = [(classes[label], score)
                for label, score in zip(pred['labels'], pred['scores'])
                if score >= args.score_thr]
        shown = ', '.join(f'{name} {score:.2f}' for name, score in kept[:5])
        print_log(f'{osp.basename(image)}: {len(kept)} objects scoring >= '
                  f'{args.score_thr}{": " + shown if shown else ""}',
                  logger='current')
    return ['vis', 'preds']


def build_seg(cfg: Config, args: argparse.Namespace):
    from mmseg.apis import MMSegInferencer
    inferencer = without_weights(lambda: MMSegInferencer(
        model=cfg, weights=None, device=args.device))
    inferencer.show_progress = False
    return inferencer


def infer_seg(inferencer, cfg: Config, args: argparse.Namespace,
              images: List[str], names: dict) -> List[str]:
    import numpy as np
    from PIL import Image
    dataset_meta = dict(inferencer.model.dataset_meta)
    if names.get('classes'):
        dataset_meta = dict(classes=list(names['classes']),
                            palette=names.get('palette'))
    # a colour per class: the names', the config's, or fixed random ones
    count = len(dataset_meta['classes'])
    for palette in (dataset_meta.get('palette'),
                    launcher.config_dataset_meta(cfg).get('palette'),
                    np.random.RandomState(0).randint(0, 256, (count, 3))):
        if palette is not None and len(palette) == count:
            dataset_meta['palette'] = [list(map(int, c)) for c in palette]
            break
    inferencer.model.dataset_meta = dataset_meta
    preds = inferencer(images, batch_size=args.batch_size,
                       out_dir=args.out_dir, return_datasamples=True)
    preds = preds if isinstance(preds, list) else [preds]
    os.makedirs(osp.join(args.out_dir, 'pred'), exist_ok=True)
    classes = dataset_meta.get('classes')
    for image, pred in zip(images, preds):
        label = pred.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
        stem = osp.splitext(osp.basename(image))[0]
        Image.fromarray(label).save(osp.join(args.out_dir, 'pred',
                                             stem + '.png'))
        ids, counts = np.unique(label, return_counts=True)
        share = ', '.join(
            f'{classes[i] if classes and i < len(classes) else i} '
            f'{100 * c / label.size:.0f}%'
            for i, c in sorted(zip(ids, counts), key=lambda x: -x[1])[:5])
        print_log(f'{osp.basename(image)}: {share}', logger='current')
    return ['vis', 'pred']


def build_cls(cfg: Config, args: argparse.Namespace):
    from mmpretrain.apis import ImageClassificationInferencer
    return ImageClassificationInferencer(model=cfg, pretrained=None,
                                         device=args.device)


def infer_cls(inferencer, cfg: Config, args: argparse.Namespace,
              images: List[str], names: dict) -> List[str]:
    from PIL import Image
    if names.get('classes'):
        inferencer.classes = list(names['classes'])
    preds = inferencer(images, batch_size=args.batch_size,
                       return_datasamples=True)
    vis_dir, pred_dir = (osp.join(args.out_dir, d) for d in ('vis', 'preds'))
    os.makedirs(vis_dir, exist_ok=True)
    os.makedirs(pred_dir, exist_ok=True)
    results = inferencer.postprocess(preds, None)
    for image, pred, result in zip(images, preds, results):
        with Image.open(image) as img:
            short = min(img.size)
        inferencer.visualize(
            [image], [pred], show_dir=vis_dir,
            resize=CLS_VIS_SHORT_SIDE if short < CLS_VIS_SHORT_SIDE else None)
        scores = [float(s) for s in result.pop('pred_scores')]
        result['pred_scores'] = scores  # last: the long list
        stem = osp.splitext(osp.basename(image))[0]
        with open(osp.join(pred_dir, stem + '.json'), 'w') as f:
            json.dump(result, f, indent=1)
        name = result.get('pred_class', result['pred_label'])
        print_log(f'{osp.basename(image)}: {name} '
                  f'({result["pred_score"]:.3f})', logger='current')
    return ['vis', 'preds']


#: per scope: (build the inferencer without weights, predict and save)
TASKS: Dict[str, Tuple[Callable, Callable]] = dict(
    mmdet=(build_det, infer_det), mmseg=(build_seg, infer_seg),
    mmpretrain=(build_cls, infer_cls))


@tool_main(PROG)
def main(argv=None) -> None:
    """Predict with the command line ``argv`` (default: ``sys.argv[1:]``).
    """
    args = parse_args(argv)
    cfg = load_config(args)
    images = list_images(args.inputs)
    if args.batch_size < 1:
        raise ToolError(f'--batch-size must be at least 1, got '
                        f'{args.batch_size}')
    if args.device is None:
        args.device = 'cuda:0' if torch.cuda.is_available() else 'cpu'
    onnxruntime = args.backend == 'onnxruntime'
    checkpoint = None if onnxruntime else open_checkpoint(args.checkpoint)
    build, infer = TASKS[cfg.default_scope]
    # in the config's scope (also when main() runs in a process that has
    # used another library's scope before)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        inferencer = build(cfg, args)
        if onnxruntime:
            use_onnxruntime(inferencer, cfg, args.checkpoint)
            meta = {}
        else:
            meta = load_weights(inferencer.model, args.checkpoint,
                                checkpoint)
        del checkpoint  # the memory-mapped file
        if args.compile:
            launcher.enable_compile(cfg)
            launcher.compile_model(
                inferencer.model,
                cfg.compile if isinstance(cfg.compile, dict) else None)
        os.makedirs(args.out_dir, exist_ok=True)
        folders = infer(inferencer, cfg, args, images,
                        class_names(cfg, meta))
    print_log(f'{len(images)} image(s): pictures and predictions in '
              f'{" and ".join(osp.join(args.out_dir, f) for f in folders)}',
              logger='current')


if __name__ == '__main__':
    sys.exit(main())
