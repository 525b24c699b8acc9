"""The command line of the export and analysis tools
(``tools/deployment/``): the model arguments (a config or an arch, a
checkpoint, the backbone only, the input size) and the model they give
(:func:`mvig2_mm.deployment.build_export_model`)."""
import argparse
import importlib
import os.path as osp
import sys
from typing import Callable, List, Optional, Tuple

import torch
import torch.nn as nn

from ..deployment import build_export_model
from ..models import MobileViGv2
from ..models.backbones import BACKBONES
from .tool import ToolError, add_debug_argument

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


#: Calibration images of an 8-bit export, by default.
CALIBRATION_IMAGES = 32


def add_int8_args(parser: argparse.ArgumentParser) -> None:
    """The 8-bit arguments of the ExecuTorch and OpenVINO exporters."""
    parser.add_argument('--int8', action='store_true',
                        help='8-bit weights and activations, calibrated on '
                        'images of the config\'s dataset (or --calib-dir)')
    parser.add_argument('--calib', type=int, default=CALIBRATION_IMAGES,
                        metavar='N',
                        help='calibrate on N images, spread over the '
                        'config\'s training set (default: '
                        f'{CALIBRATION_IMAGES})')
    parser.add_argument('--calib-dir', metavar='DIR',
                        help='calibrate on the images of DIR instead, '
                        'through the config\'s test pipeline')


def check_int8_args(parser: argparse.ArgumentParser,
                    args: argparse.Namespace) -> None:
    """Validate the 8-bit arguments (a usage error exits through
    ``parser.error``)."""
    calibrating = args.calib_dir or args.calib != CALIBRATION_IMAGES
    if calibrating and not args.int8:
        parser.error('--calib and --calib-dir are for --int8')
    if args.int8 and not args.config:
        parser.error('--int8 needs a config (its test pipeline and data '
                     'preprocessor prepare the calibration images)')
    if args.calib < 1:
        parser.error('--calib takes a number of images of at least 1')
    if args.calib_dir and not osp.isdir(args.calib_dir):
        parser.error(f'--calib-dir: no such folder: {args.calib_dir}')


def parse_int8_export_args(parser: argparse.ArgumentParser,
                           argv=None) -> argparse.Namespace:
    """Parse ``argv`` for an exporter with 8-bit options
    (:func:`add_int8_args`): the model arguments and ``--int8`` checked,
    ``args.shape`` as ``(height, width)``."""
    args = parser.parse_args(argv)
    args.shape = check_model_args(parser, args)
    check_int8_args(parser, args)
    return args


def calibration_from_args(args: argparse.Namespace,
                          shape: Tuple[int, int]
                          ) -> Optional[List[torch.Tensor]]:
    """The calibration inputs that the 8-bit arguments ask for
    (:func:`~mvig2_mm.deployment.calibration.config_images`); None for a
    float export."""
    if not args.int8:
        return None
    from ..deployment.calibration import config_images
    images = config_images(args.config, shape, args.calib, args.calib_dir)
    print(f'calibrating on {len(images)} images of '
          + (args.calib_dir or f'the training set of {args.config}'))
    return images


def require(package: str) -> None:
    """Stop with one line naming the install command when the optional
    package ``package`` is missing (before any model is built)."""
    try:
        importlib.import_module(package)
    except ImportError as e:
        raise missing_package(e, package) from e


def model_and_calibration(
        args: argparse.Namespace, verb: str
) -> Tuple[nn.Module, Optional[List[torch.Tensor]]]:
    """The model to export (:func:`model_from_args`) and its calibration
    inputs (:func:`calibration_from_args`; None for a float export)."""
    model = model_from_args(args, verb)
    return model, calibration_from_args(args, args.shape)


def verification_inputs(calibration: Optional[List[torch.Tensor]],
                        shape: Tuple[int, int]) -> List[torch.Tensor]:
    """What ``--verify`` runs: four calibration images of an 8-bit export
    (realistic inputs for its SNR), else a random input."""
    from ..deployment.checks import random_inputs
    return calibration[:4] if calibration else random_inputs([(1, *shape)])


def print_verification(verify: Callable[..., list], runtime: str, model,
                       path: str, inputs: List[torch.Tensor],
                       tolerance: float) -> None:
    """``--verify``: run ``verify(model, path, inputs, tolerance)`` (an
    export module's ``verify``) and print a line per input; a difference
    over ``tolerance`` is a :class:`ToolError`."""
    try:
        report = verify(model, path, inputs, tolerance)
    except AssertionError as e:
        raise ToolError(f'verification failed: {e}') from e
    for shape, diff, snr in report:
        print(f'  {runtime} vs PyTorch float for input {shape}: largest '
              f'difference {diff:.1e}, SNR {snr:.1f} dB')


def missing_package(error: ImportError, package: str) -> ToolError:
    """The one-line error for an export whose optional package
    ``package`` (an extra of the deploy set) is missing."""
    return ToolError(f'{error.name or package} is not installed: pip '
                     f'install -e .[deploy] (or pip install {package}, '
                     f'with your torch kept)')
