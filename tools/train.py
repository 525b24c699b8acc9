#!/usr/bin/env python3
"""Train a MobileViGv2 detector, segmentor or classifier.

One launcher for the three tasks: the config's ``default_scope`` (set by the
mmdet / mmseg / mmpretrain base configs it inherits) selects the library, and
mmengine's ``Runner`` does the rest.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--auto-scale-lr] [--cfg-options KEY=VALUE ...] [--debug]
    tools/dist_train.sh CONFIG GPUS [same options]

A mistake of the user's (a config value that cannot work, a missing file, a
checkpoint that does not fit, ...) ends the run with one line
``tools/train.py: error: ...``; ``--debug`` prints its traceback too. Any
other error keeps its traceback.
"""
import logging
import os.path as osp
import sys

from mmengine.config import Config
from mmengine.device import get_device
from mmengine.logging import print_log

# registers MobileViGv2 and allow-lists mmengine checkpoints for torch.load
import mvig2_mm  # noqa: F401,E402
from mvig2_mm.cli import launcher
from mvig2_mm.cli.tool import ToolError, tool_main

PROG = 'tools/train.py'


def parse_args(argv=None):
    parser = launcher.tool_parser(PROG, 'Train', 'train config file path')
    parser.add_argument(
        '--resume', nargs='?', const='auto', default=None, metavar='CKPT',
        help='resume training: without a value from the latest checkpoint in '
        'the work dir, or from the checkpoint CKPT (give CONFIG first)')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate by (GPUs x batch size) / '
        'auto_scale_lr.base_batch_size')
    launcher.add_common_arguments(parser, 'train_dataloader.batch_size')
    return launcher.parse_with_common(parser, argv)


def build_config(args) -> Config:
    """Load the config and apply the command line to it."""
    if args.resume not in (None, 'auto') and osp.isfile(args.config) and not (
            launcher.is_url(args.resume) or osp.isfile(args.resume)):
        raise ToolError(f'checkpoint to resume from not found: {args.resume}')
    cfg = launcher.load_config(args)

    if args.amp:
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in the config.',
                      logger='current', level=logging.WARNING)
        elif get_device() == 'cpu':
            raise ToolError("--amp needs a GPU (mmengine's AmpOptimWrapper "
                            'does not run on CPU)')
        elif wrapper != 'OptimWrapper':
            raise ToolError(f'--amp needs optim_wrapper.type OptimWrapper, '
                            f'the config has {wrapper}')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        scale = cfg.get('auto_scale_lr')
        if not scale or 'base_batch_size' not in scale:
            raise ToolError('--auto-scale-lr needs '
                            'auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    launcher.use_gloo_without_cuda(cfg, 'tools/dist_train.sh')
    return cfg


@tool_main(PROG)
def main(argv=None) -> None:
    """Train with the command line ``argv`` (default: ``sys.argv[1:]``)."""
    cfg = build_config(parse_args(argv))
    loaders, evaluators = ['train_dataloader'], []
    if cfg.get('val_cfg') and cfg.get('val_evaluator'):  # validates too
        loaders.append('val_dataloader')
        evaluators.append('val_evaluator')
    launcher.run(cfg, 'train', loaders, evaluators)


if __name__ == '__main__':
    sys.exit(main())
