"""Convert a published MobileViGv2 or MobileViG checkpoint to mvig2_mm's
layout.

    python tools/model_converters/mobilevigv2_to_mm.py SRC DST [--ema]

SRC is any of the kinds of published file, of either family (MobileViGv2 or
its predecessor MobileViG), recognised from its keys:

- an ImageNet classifier (timm-style training checkpoint; ``state_dict`` is
  converted, or ``state_dict_ema`` with ``--ema``): the result loads into
  ``configs/classification/mvig2_*_in1k.py`` (``mvig_*_in1k.py`` for
  MobileViG) and, as a backbone
  (``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``),
  into every detection and segmentation config;
- a COCO Mask R-CNN (mmdet 2.28) or ADE20K Semantic FPN (mmseg 0.30) model:
  the result loads into ``configs/detection/maskrcnn_mvig2_*.py``
  (``maskrcnn_mvig_*.py``) or ``configs/segmentation/semfpn_mvig2_*.py``;
  its class names become
  ``meta.dataset_meta``, which mmdet 3 / mmseg 1 and their inferencers read.

Every tool and config here also takes the published files as they are
(converted while they load); the converter is for a file on disk. Converting
a converted file changes nothing. A mistake of the user's ends the tool with
one line (``--debug``: its traceback too).
"""
import argparse
import os
import os.path as osp
import sys

import torch

import mvig2_mm  # noqa: F401  (allow-lists argparse.Namespace for torch.load)
from mvig2_mm.cli.tool import ToolError, add_debug_argument, tool_main
from mvig2_mm.models.backbones import BACKBONES
from mvig2_mm.weights import (checkpoint_family, convert_checkpoint,
                              describe_arch, load_checkpoint_file)
from mvig2_mm.weights.converter import EMA_KEYS, has_ema_weights

PROG = 'tools/model_converters/mobilevigv2_to_mm.py'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG,
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='published checkpoint (path or URL)')
    parser.add_argument('dst', help='where to save the converted checkpoint')
    parser.add_argument('--ema', action='store_true',
                        help="ImageNet files: convert 'state_dict_ema' "
                        "instead of 'state_dict' (the reference evaluates "
                        "'state_dict'; its detection and segmentation "
                        'backbones start from the EMA weights)')
    add_debug_argument(parser)
    return parser.parse_args(argv)


@tool_main(PROG)
def main(argv=None) -> int:
    """Convert with the command line ``argv`` (default: ``sys.argv[1:]``).
    """
    args = parse_args(argv)
    content = load_checkpoint_file(args.src)
    if args.ema and not has_ema_weights(content):
        raise ToolError(f'--ema: {args.src} has no EMA weights (no '
                        f'{" or ".join(EMA_KEYS)}); convert it without '
                        f'--ema')
    converted = convert_checkpoint(content, use_ema=args.ema)
    state_dict, meta = converted['state_dict'], converted['meta']
    meta.update(converted_from=osp.basename(args.src), ema=args.ema)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(converted, args.dst)
    backbone = {k[len('backbone.'):]: v for k, v in state_dict.items()
                if k.startswith('backbone.')}
    family = checkpoint_family(backbone) or 'MobileViGv2'
    classes = (meta.get('dataset_meta') or {}).get('classes')
    print(f"Converted {meta.get('task', 'unknown-task')} checkpoint: "
          f'{len(state_dict)} tensors, {family} '
          f'{describe_arch(backbone, BACKBONES[family])}, '
          f"{'EMA' if args.ema else 'live'} weights"
          + (f', {len(classes)} class names' if classes else '')
          + f' -> {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
