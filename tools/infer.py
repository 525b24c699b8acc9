#!/usr/bin/env python3
"""Run a trained MobileViGv2 detector, segmentor or classifier on images.

One tool for the three tasks: the config's ``default_scope`` picks the
library's own inferencer (mmdet ``DetInferencer``, mmseg ``MMSegInferencer``,
mmpretrain ``ImageClassificationInferencer``).

    python tools/infer.py CONFIG CHECKPOINT IMAGE_OR_DIR --out-dir DIR
        [--device cpu] [--score-thr 0.3] [--batch-size 1]
        [--cfg-options KEY=VALUE ...]

What it writes under ``DIR`` (``NAME`` is the input's file name, ``STEM``
without its extension):

- detection: ``vis/NAME`` (boxes, masks and labels of the predictions scoring
  at least ``--score-thr``) and ``preds/STEM.json`` (all predictions);
- segmentation: ``vis/NAME`` (the classes' colours blended over the image)
  and ``pred/STEM.png`` (the class id of every pixel);
- classification: ``vis/STEM.png`` (the image with the predicted class and
  score) and ``preds/STEM.json`` (label, class name, score, all scores).

Class names come from the checkpoint's ``meta.dataset_meta`` (every
checkpoint that mmengine's ``Runner`` writes has them), else from the
config's test dataset.
"""
import argparse
import json
import os
import os.path as osp
import warnings

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import MODELS, DefaultScope

# registers MobileViGv2 and allow-lists mmengine checkpoints for torch.load
import mvig2_mm  # noqa: F401,E402
from mvig2_mm.cli import launcher
from mvig2_mm.cli.checkpoints import (backbone_form_mismatch, first_line,
                                      read_checkpoint)
from mvig2_mm.cli.data_checks import describe_load_error
from mvig2_mm.weights import (CheckpointMismatchError, check_checkpoint,
                              dataset_meta_of)

PROG = 'tools/infer.py'
SCOPES = ('mmdet', 'mmseg', 'mmpretrain')
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff',
                    '.webp', '.ppm', '.pgm')
# a classifier's input is small; its picture is enlarged to this short side
# so that the drawn label stays legible
CLS_VIS_SHORT_SIDE = 224


def parse_args(argv=None):
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
    parser.add_argument(
        '--cfg-options', nargs='+', action=launcher.StrictDictAction,
        help='override config settings, as key=value pairs')
    return parser.parse_args(argv)


def fail(message: str) -> None:
    launcher.fail(PROG, message)


def list_images(path: str) -> list:
    """The image files of ``path`` (a file, or a folder's images, sorted);
    each is checked to be an image (its header only)."""
    from PIL import Image
    if osp.isdir(path):
        images = sorted(
            osp.join(path, name) for name in os.listdir(path)
            if name.lower().endswith(IMAGE_EXTENSIONS)
            and osp.isfile(osp.join(path, name)))
        if not images:
            fail(f'no images in {path} (looked for '
                 f'{", ".join(IMAGE_EXTENSIONS)})')
    elif osp.isfile(path):
        images = [path]
    else:
        fail(f'input not found: {path}')
    for image in images:
        try:
            with Image.open(image):
                pass
        except Exception:
            fail(f'cannot read image {image}: not an image file')
    return images


def load_config(args) -> Config:
    if osp.isfile(args.config) and not (launcher.is_url(args.checkpoint)
                                        or osp.isfile(args.checkpoint)):
        fail(f'checkpoint file not found: {args.checkpoint}')
    cfg = launcher.read_config(args.config, args.cfg_options, PROG)
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        fail(f"the config's default_scope is {scope!r}; {PROG} runs mmdet, "
             f'mmseg and mmpretrain models')
    mismatch = backbone_form_mismatch(cfg.get('model', {}), args.checkpoint)
    if mismatch:
        fail(mismatch)
    return cfg


def open_checkpoint(path: str) -> dict:
    """The checkpoint's content (memory-mapped: the weights are read once,
    by the inferencer); stops with one line when it is no checkpoint."""
    try:
        checkpoint = read_checkpoint(path)
    except ValueError as e:
        fail(str(e))
    if not isinstance(checkpoint, dict):
        fail(f'cannot load checkpoint {path}: not a dict of weights')
    return checkpoint


def check_fits(cfg: Config, checkpoint: dict, path: str) -> None:
    """Stop with one line unless the checkpoint sets every weight of the
    config's model (the inferencers load non-strictly)."""
    try:
        with MODELS.switch_scope_and_registry(cfg.default_scope) as registry:
            model = registry.build(cfg.model.copy())
    except launcher.BUILD_ERRORS as e:
        fail(f'cannot build the model of {osp.basename(cfg.filename)}: '
             f'{first_line(e)}')
    try:
        check_checkpoint(model, checkpoint, f'checkpoint {path}')
    except CheckpointMismatchError as e:
        fail(first_line(e))


# ------------------------------------------------------------ per task
def infer_det(cfg, args, images, meta):
    from mmdet.apis import DetInferencer
    with warnings.catch_warnings():
        if meta is not None:  # classes set below, not COCO's
            warnings.filterwarnings('ignore', message='dataset_meta or class')
        inferencer = DetInferencer(model=cfg, weights=args.checkpoint,
                                   device=args.device, show_progress=False)
    if meta is not None and meta.get('classes'):
        inferencer.model.dataset_meta['classes'] = meta['classes']
        inferencer.visualizer.dataset_meta = inferencer.model.dataset_meta
    results = inferencer(images, batch_size=args.batch_size,
                         out_dir=args.out_dir, pred_score_thr=args.score_thr,
                         no_save_pred=False)
    classes = inferencer.model.dataset_meta['classes']
    for image, pred in zip(images, results['predictions']):
        kept = [(classes[label], score)
                for label, score in zip(pred['labels'], pred['scores'])
                if score >= args.score_thr]
        shown = ', '.join(f'{name} {score:.2f}' for name, score in kept[:5])
        print_log(f'{osp.basename(image)}: {len(kept)} objects scoring >= '
                  f'{args.score_thr}{": " + shown if shown else ""}',
                  logger='current')
    return ['vis', 'preds']


def infer_seg(cfg, args, images, meta):
    import numpy as np
    from mmseg.apis import MMSegInferencer
    from PIL import Image
    with warnings.catch_warnings():
        if meta is not None:  # classes set below, not Cityscapes'
            warnings.filterwarnings('ignore', message='dataset_meta or class')
        inferencer = MMSegInferencer(model=cfg, weights=args.checkpoint,
                                     device=args.device)
    inferencer.show_progress = False
    dataset_meta = dict(inferencer.model.dataset_meta)
    if meta is not None and meta.get('classes'):
        dataset_meta = dict(classes=list(meta['classes']),
                            palette=meta.get('palette'))
    # a colour per class: the checkpoint's, the config's, or fixed random ones
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
    classes = inferencer.model.dataset_meta.get('classes')
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


def infer_cls(cfg, args, images, meta):
    from mmpretrain.apis import ImageClassificationInferencer
    from PIL import Image
    classes = meta.get('classes') if meta is not None else None
    inferencer = ImageClassificationInferencer(
        model=cfg, pretrained=args.checkpoint, device=args.device,
        classes=classes)
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


TASKS = dict(mmdet=infer_det, mmseg=infer_seg, mmpretrain=infer_cls)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args)
    images = list_images(args.inputs)
    if args.batch_size < 1:
        fail(f'--batch-size must be at least 1, got {args.batch_size}')
    if args.device is None:
        args.device = 'cuda:0' if torch.cuda.is_available() else 'cpu'
    # classes: the checkpoint's (the inferencers read them, also mmdet 2.x /
    # mmseg 0.x ``CLASSES``), else the config's
    meta = None
    if not launcher.is_url(args.checkpoint):
        checkpoint = open_checkpoint(args.checkpoint)
        check_fits(cfg, checkpoint, args.checkpoint)
        if not dataset_meta_of(checkpoint.get('meta') or {}):
            meta = launcher.config_dataset_meta(cfg)
    os.makedirs(args.out_dir, exist_ok=True)
    try:  # in the config's scope (also when main() runs in a process
        # that has used another library's scope before)
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            folders = TASKS[cfg.default_scope](cfg, args, images, meta)
    except Exception as e:  # a file the pipeline cannot read: one line
        message = describe_load_error(e)
        if message is None:
            raise
        fail(message)
    print_log(f'{len(images)} image(s): pictures and predictions in '
              f'{" and ".join(osp.join(args.out_dir, f) for f in folders)}',
              logger='current')


if __name__ == '__main__':
    main()
