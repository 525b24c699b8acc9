"""Parameters and MACs of a config's model, or of a MobileViGv2 or MobileViG
variant.

    python tools/analysis_tools/get_flops.py --arch m --shape 224
    python tools/analysis_tools/get_flops.py --arch m --backbone MobileViG
    python tools/analysis_tools/get_flops.py \
        configs/detection/maskrcnn_mvig2_m.py --shape 800 1333

For a config, the part counted is ``model.extract_feat`` (backbone + neck),
as in mmdet's/mmpretrain's own tools; ``--arch`` counts the backbone alone and
the full classifier (backbone + head with the distillation classifier).
MACs are counted by mmengine's analyzer (convolutions and matmuls; the graph
conv's max/roll are elementwise and not counted;
``mvig2_mm.deployment.count``).
"""
import argparse
import os.path as osp
import sys

import torch.nn as nn

from mvig2_mm.cli.tool import ToolError, add_debug_argument, tool_main
from mvig2_mm.deployment import count
from mvig2_mm.models.backbones import BACKBONES

PROG = 'tools/analysis_tools/get_flops.py'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG,
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('config', nargs='?', help='model config file')
    parser.add_argument('--arch', choices=['ti', 's', 'm', 'b'],
                        help='count a variant instead of a config')
    parser.add_argument('--backbone', default='MobileViGv2',
                        choices=list(BACKBONES),
                        help='the family of --arch (default: MobileViGv2)')
    parser.add_argument('--shape', type=int, nargs='+', default=[224],
                        help='input size: one int (square) or H W')
    parser.add_argument('--num-classes', type=int, default=1000)
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if bool(args.config) == bool(args.arch):
        parser.error('give either a config file or --arch')
    if len(args.shape) not in (1, 2):
        parser.error('--shape takes one or two ints')
    return args


class _Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x):
        return self.head(self.backbone(x))


class _ExtractFeat(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.extract_feat(x)


def arch_models(arch: str, num_classes: int,
                backbone: str = 'MobileViGv2'):
    """The backbone and the reference ImageNet classifier of a variant."""
    from mmengine.registry import DefaultScope

    from mvig2_mm.models import imagenet_classifier_cfg
    cfg = imagenet_classifier_cfg(arch, num_classes, backbone=backbone)
    models = [('backbone', BACKBONES[backbone](arch, out_indices=(3, )))]
    try:
        from mvig2_mm.models.heads import MobileViGv2Head
    except ImportError:
        return models
    head_cfg = cfg['head']
    head_cfg.pop('type')
    with DefaultScope.overwrite_default_scope('mmpretrain'):  # for its loss
        head = MobileViGv2Head(**head_cfg)
    return models + [('classifier (with dist head)',
                      _Classifier(models[0][1], head))]


def config_models(path: str):
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    if not osp.isfile(path):
        raise ToolError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model = MODELS.build(cfg.model)
    return [(osp.basename(path), _ExtractFeat(model)),
            ('backbone', model.backbone)]


@tool_main(PROG)
def main(argv=None) -> int:
    """Count with the command line ``argv`` (default: ``sys.argv[1:]``)."""
    args = parse_args(argv)
    import mvig2_mm  # noqa: F401
    shape = tuple(args.shape * 2 if len(args.shape) == 1 else args.shape)
    models = (arch_models(args.arch, args.num_classes, args.backbone)
              if args.arch
              else config_models(args.config))
    print('| model | input | params (M) | MACs (G) |\n|---|---|---|---|')
    for name, model in models:
        params, macs = count(model, shape)
        print(f'| {name} | {shape[0]}x{shape[1]} | {params / 1e6:.2f} | '
              f'{macs / 1e9:.3f} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
