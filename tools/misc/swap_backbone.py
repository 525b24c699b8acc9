#!/usr/bin/env python3
"""Write a copy of an OpenMMLab detection config with a MobileViGv2 backbone.

Example:
    python tools/misc/swap_backbone.py \
        mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py --arch m \
        -o my_configs/fasterrcnn_mvig2_m_1x.py

BASE_CONFIG is a file or ``package::path`` inside an installed package's
configs. The written file is self-contained (bases merged). See
``mvig2_mm.apis.swap_backbone`` for exactly what changes. A mistake of the
user's ends the tool with one line (``--debug``: its traceback too).
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config

from mvig2_mm.apis.swap_backbone import DEFAULT_CHECKPOINT, swap_backbone
from mvig2_mm.cli.tool import ToolError, add_debug_argument, tool_main
from mvig2_mm.models import MobileViGv2
from mvig2_mm.models.backbones import BACKBONES

PROG = 'tools/misc/swap_backbone.py'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG, description='Write a config with MobileViGv2 (or '
        'MobileViG) as backbone.')
    parser.add_argument('config', help='base config: a file or package::path '
                        '(e.g. mmdet::retinanet/retinanet_r50_fpn_1x_coco.py)')
    parser.add_argument('--arch', default='m',
                        choices=list(MobileViGv2.arch_settings),
                        help='variant (default: m)')
    parser.add_argument('--backbone', default='MobileViGv2',
                        choices=list(BACKBONES),
                        help='the family (default: MobileViGv2)')
    parser.add_argument('-o', '--out', required=True,
                        help='path of the new config (.py)')
    parser.add_argument('--checkpoint', default=DEFAULT_CHECKPOINT,
                        help='ImageNet checkpoint of the backbone ({arch} and '
                        '{family} are filled in; default: '
                        f'{DEFAULT_CHECKPOINT})')
    parser.add_argument('--no-pretrained', action='store_true',
                        help='random backbone init instead of a checkpoint')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def load_config(path: str) -> Config:
    if '::' in path:
        from mmengine.hub import get_config
        return get_config(path)
    if not osp.isfile(path):
        raise ToolError(f'config file not found: {path}')
    return Config.fromfile(path)


@tool_main(PROG)
def main(argv=None) -> None:
    """Write the config of the command line ``argv`` (default:
    ``sys.argv[1:]``)."""
    args = parse_args(argv)
    if not args.out.endswith('.py'):
        raise ToolError(f'--out must end in .py, got {args.out}')
    cfg = swap_backbone(load_config(args.config), arch=args.arch,
                        checkpoint=None if args.no_pretrained else
                        args.checkpoint, backbone=args.backbone)
    if osp.dirname(args.out):
        os.makedirs(osp.dirname(args.out), exist_ok=True)
    cfg.dump(args.out)
    print(f'Wrote {args.out}: {args.config} with {args.backbone}-{args.arch}')


if __name__ == '__main__':
    sys.exit(main())
