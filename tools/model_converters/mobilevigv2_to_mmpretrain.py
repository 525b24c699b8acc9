"""Convert a reference MobileViGv2 ImageNet checkpoint to mvig2_mm's layout.

    python tools/model_converters/mobilevigv2_to_mmpretrain.py \
        mobilevigv2_m.pth checkpoints/mobilevigv2_m_in1k.pth [--ema]

The result loads into ``configs/classification/mvig2_m_in1k.py`` and, with
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``, into
every detection and segmentation config.
"""
import argparse
import os
import os.path as osp
import sys

import torch

import mvig2_mm  # noqa: F401  (allow-lists argparse.Namespace for torch.load)
from mvig2_mm.models.utils.checkpoint_converter import (
    convert_reference_state_dict, is_reference_layout)
from mvig2_mm.models.utils.checkpoint_loading import (describe_arch,
                                                      load_checkpoint_file,
                                                      select_state_dict)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='reference checkpoint (path or URL)')
    parser.add_argument('dst', help='where to save the converted checkpoint')
    parser.add_argument('--ema', action='store_true',
                        help="convert 'state_dict_ema' instead of 'state_dict' "
                        '(the reference detection/segmentation recipes start '
                        'from the EMA weights)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        content = load_checkpoint_file(args.src)
        state_dict = select_state_dict(content, use_ema=args.ema)
    except (FileNotFoundError, KeyError) as e:
        print(f'error: {e.args[0] if e.args else e}', file=sys.stderr)
        return 1
    if not is_reference_layout(state_dict):
        print(f'{args.src} is not in the reference layout (already converted?)'
              f'; saving its weights unchanged.', file=sys.stderr)
    converted = convert_reference_state_dict(state_dict)
    backbone = {k[len('backbone.'):]: v for k, v in converted.items()
                if k.startswith('backbone.')}
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(dict(state_dict=converted,
                    meta=dict(converted_from=osp.basename(args.src),
                              ema=args.ema)), args.dst)
    print(f'Converted {len(converted)} tensors ({describe_arch(backbone)}, '
          f"{'EMA' if args.ema else 'live'} weights) -> {args.dst}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
