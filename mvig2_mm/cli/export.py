"""The command line of the export and analysis tools
(``tools/deployment/``): the model arguments (a config or an arch, a
checkpoint, the backbone only, the input size) and the model they give
(:func:`mvig2_mm.deployment.build_export_model`)."""
import argparse
import os.path as osp
import sys
from typing import Tuple

import torch.nn as nn

from ..deployment import build_export_model
from ..models import MobileViGv2
from ..models.backbones import BACKBONES
from .tool import add_debug_argument

ARCHS = tuple(MobileViGv2.arch_settings)


def export_parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """The argument parser of an export tool whose module docstring is
    ``doc`` (first paragraph: description, the rest: epilog), with the
    model arguments and ``--debug``."""
    parser = argparse.ArgumentParser(
        prog=prog, description=doc.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n\n'.join(doc.split('\n\n')[1:]))
    add_model_args(parser)
    add_debug_argument(parser)
    return parser


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The model arguments of the export tools."""
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
    """Validate the model arguments (a usage error exits through
    ``parser.error``); return the input (H, W)."""
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


def model_from_args(args: argparse.Namespace, verb: str) -> nn.Module:
    """:func:`~mvig2_mm.deployment.build_export_model` from the parsed
    model arguments; warns when no checkpoint gives the weights.

    Args:
        args (argparse.Namespace): The parsed arguments.
        verb (str): What the tool does, for the warning (``'exporting'``).
    """
    model = build_export_model(args.config, args.arch, args.checkpoint,
                               args.backbone_only, args.backbone)
    if not args.checkpoint:
        print(f'warning: no --checkpoint, {verb} random weights',
              file=sys.stderr)
    return model
