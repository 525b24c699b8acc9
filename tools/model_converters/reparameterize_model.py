"""Convert a trained MobileViGv2 model to its inference (deploy) form.

    python tools/model_converters/reparameterize_model.py \
        configs/classification/mvig2_m_in1k.py \
        work_dirs/mvig2_m_in1k/epoch_300.pth \
        checkpoints/mvig2_m_in1k_deploy.pth

Builds the model of CONFIG, loads CHECKPOINT strictly (an mmpretrain, mmdet
or mmseg checkpoint of that config, or a published file, converted on the
fly), calls ``switch_to_deploy()`` on every module that has it and saves
the resulting state dict. A classifier's loads into
``configs/classification/deploy/*_deploy.py``; a detector's or segmentor's
into its own config with ``--cfg-options model.backbone.deploy=True``. A
mistake of the user's ends the tool with one line (``--debug``: its
traceback too).
"""
import argparse
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mvig2_mm  # noqa: F401  (registers the modules, allow-lists classes)
from mvig2_mm.cli.launcher import StrictDictAction, read_config
from mvig2_mm.cli.tool import add_debug_argument, tool_main
from mvig2_mm.models.utils import switch_to_deploy
from mvig2_mm.weights import dataset_meta_of, load_checkpoint_strictly

PROG = 'tools/model_converters/reparameterize_model.py'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG,
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='training config of the model')
    parser.add_argument('checkpoint', help='trained checkpoint (path or URL)')
    parser.add_argument('dst', help='where to save the deploy checkpoint')
    parser.add_argument('--cfg-options', nargs='+', action=StrictDictAction,
                        help='override settings of the config')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def build_model(config: Config) -> torch.nn.Module:
    """Build ``config.model`` for inference (CPU, eval mode)."""
    from mmpretrain.registry import MODELS
    init_default_scope(config.get('default_scope', 'mmpretrain'))
    return MODELS.build(config.model.copy()).eval()


@tool_main(PROG)
def main(argv=None) -> int:
    """Convert with the command line ``argv`` (default: ``sys.argv[1:]``).
    """
    args = parse_args(argv)
    model = build_model(read_config(args.config, args.cfg_options))
    content = load_checkpoint_strictly(model, args.checkpoint)
    switch_to_deploy(model)

    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    meta = dict(content.get('meta') or {})
    dataset_meta = dataset_meta_of(meta)  # mmdet 2.x / mmseg 0.x: CLASSES
    if dataset_meta:
        meta['dataset_meta'] = dataset_meta
    meta.update(deploy=True, converted_from=osp.basename(args.checkpoint))
    torch.save(dict(meta=meta, state_dict=model.state_dict()), args.dst)
    print(f'Saved the deploy form of {osp.basename(args.checkpoint)} -> '
          f'{args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
