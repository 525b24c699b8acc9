#!/usr/bin/env python3
"""Test (and evaluate) a MobileViGv2 detector, segmentor or classifier.

One launcher for the three tasks: the config's ``default_scope`` (set by the
mmdet / mmseg / mmpretrain base configs it inherits) selects the library, and
mmengine's ``Runner`` does the rest.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE.pkl]
        [--show-dir DIR] [--compile] [--cfg-options KEY=VALUE ...] [--debug]
    tools/dist_test.sh CONFIG CHECKPOINT GPUS [same options]
    python tools/test.py CONFIG DIR --backend onnxruntime [same options]

``--backend onnxruntime`` evaluates a detector or segmentor exported whole
(``DIR``: the folder that ``tools/deployment/mmdeploy_convert.py`` wrote)
with the config's test dataloader and evaluator, as mmdeploy's own
``tools/test.py`` does: its ``end2end.onnx`` through mmdeploy's ONNX
Runtime wrapper in mmdeploy's test Runner, on the CPU, in one process.

A mistake of the user's (a config value that cannot work, a missing file, a
checkpoint that does not fit, ...) ends the run with one line
``tools/test.py: error: ...``; ``--debug`` prints its traceback too. Any
other error keeps its traceback.
"""
import functools
import os.path as osp
import sys

from mmengine.config import Config

# registers MobileViGv2 and allow-lists mmengine checkpoints for torch.load
import mvig2_mm  # noqa: F401,E402
from mvig2_mm.cli import backends, launcher
from mvig2_mm.cli.checkpoints import backbone_form_mismatch
from mvig2_mm.cli.tool import ToolError, tool_main

PROG = 'tools/test.py'


def parse_args(argv=None):
    parser = launcher.tool_parser(PROG, 'Test', 'test config file path')
    parser.add_argument('checkpoint', help='checkpoint file (path or URL); '
                        '--backend onnxruntime: the converted folder')
    parser.add_argument('--out', help='dump the predictions to this .pkl file')
    parser.add_argument(
        '--show-dir', help='save every test image with its predictions drawn '
        'on it (detection: to WORK_DIR/TIMESTAMP/SHOW_DIR, segmentation: '
        'SHOW_DIR/vis_data/vis_image, classification: SHOW_DIR)')
    parser.add_argument('--show', action='store_true',
                        help='show the predictions in a window')
    parser.add_argument('--wait-time', type=float, default=2,
                        help='seconds each shown image stays up')
    parser.add_argument('--compile', action='store_true',
                        help=launcher.COMPILE_HELP)
    backends.add_backend_argument(parser)
    launcher.add_common_arguments(parser, 'test_dataloader.batch_size')
    return launcher.parse_with_common(parser, argv)


def enable_visualization(cfg: Config, args) -> None:
    """Turn the config's visualization hook on, the way each library's own
    ``tools/test.py`` does (their hooks take different arguments)."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise ToolError('--show/--show-dir need default_hooks.visualization '
                        'in the config')
    scope = cfg.get('default_scope')
    if scope == 'mmpretrain':  # VisualizationHook: images go to out_dir
        hook.enable = True
        hook.interval = 1
        if args.show_dir:
            hook.out_dir = args.show_dir
    elif scope == 'mmseg':  # SegVisualizationHook: through the visualizer
        hook.draw = True
        hook.interval = 1
        if args.show_dir:
            cfg.visualizer.save_dir = args.show_dir
    else:  # DetVisualizationHook: WORK_DIR/TIMESTAMP/test_out_dir
        hook.draw = True
        if args.show_dir:
            hook.test_out_dir = args.show_dir
    if args.show:
        hook.show = True
        hook.wait_time = args.wait_time


def add_dump_metric(cfg: Config, out: str) -> None:
    """Also dump the raw predictions of the test set to ``out``."""
    metric = dict(type='DumpResults', out_file_path=out)
    if cfg.get('default_scope') == 'mmdet':
        metric['type'] = 'DumpDetResults'  # masks as RLE, as mmdet's tool

    def listed(metrics):
        return list(metrics) if isinstance(metrics, (list, tuple)) \
            else [metrics]

    evaluator = cfg.test_evaluator
    if isinstance(evaluator, dict) and 'metrics' in evaluator:  # Evaluator
        evaluator.metrics = listed(evaluator.metrics) + [metric]
    else:
        cfg.test_evaluator = listed(evaluator) + [metric]


def build_config(args) -> Config:
    """Load the config and apply the command line to it."""
    onnxruntime = args.backend == 'onnxruntime'
    if osp.isfile(args.config) and not onnxruntime and not (
            launcher.is_url(args.checkpoint) or osp.isfile(args.checkpoint)):
        raise ToolError(f'checkpoint file not found: {args.checkpoint}')
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise ToolError(f'--out must be a .pkl file, got {args.out}')
    cfg = launcher.load_config(args)
    if onnxruntime:
        backends.check_onnxruntime(cfg, args.checkpoint, args.compile)
        if cfg.launcher != 'none':
            raise ToolError('--backend onnxruntime tests in one process: '
                            'python tools/test.py, without --launcher')
    else:
        mismatch = backbone_form_mismatch(cfg.get('model', {}),
                                          args.checkpoint)
        if mismatch:
            raise ToolError(mismatch)
        cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        enable_visualization(cfg, args)
    if args.out is not None:
        add_dump_metric(cfg, args.out)
    if args.compile:
        launcher.enable_compile(cfg)
    launcher.use_gloo_without_cuda(cfg, 'tools/dist_test.sh')
    return cfg


@tool_main(PROG)
def main(argv=None) -> None:
    """Test with the command line ``argv`` (default: ``sys.argv[1:]``)."""
    args = parse_args(argv)
    cfg = build_config(args)
    build = None
    if args.backend == 'onnxruntime':
        from mvig2_mm.deployment.end2end import build_test_runner
        onnx_file = osp.join(args.checkpoint, backends.ONNX_FILE)
        build = functools.partial(build_test_runner, onnx_file)
    launcher.run(cfg, 'test', ['test_dataloader'], ['test_evaluator'],
                 strict_load=True, build=build)


if __name__ == '__main__':
    sys.exit(main())
