"""Convert a MobileViG-family detector or segmentor (Mask R-CNN, Semantic
FPN, UperNet, ...) whole to ONNX Runtime with mmdeploy.

    python tools/deployment/mmdeploy_convert.py \\
        configs/detection/maskrcnn_mvig2_m.py \\
        --checkpoint mask_rcnn_mobilevigv2_m.pth \\
        --out work_dirs/maskrcnn_mvig2_m_ort --verify --images demo/

writes ``DIR/end2end.onnx`` (inputs: the normalised image batch; outputs:
``dets``, ``labels``, ``masks`` for a detector, per-pixel class logits
``output`` for a segmentor; dynamic batch and size) and mmdeploy's SDK
metadata (``deploy.json``, ``pipeline.json``, ``detail.json``), so that
mmdeploy's ``mmdeploy_runtime`` and its Python wrapper (``tools/infer.py
--backend onnxruntime``) load the folder.

The checkpoint is loaded strictly (a published file as it is), the backbone
turned into its deploy form, and mmdeploy's exporter with its rewriters
writes the graph. The deploy config is the project's
(``configs/deployment/``: instance segmentation, detection or segmentation
to ONNX Runtime with dynamic sizes) unless ``--deploy-cfg`` names another.
``--verify`` predicts with the exported model (mmdeploy's ONNX Runtime
wrapper) and with PyTorch (mmdet's / mmseg's ``predict``) on ``--images``
(default: the tracing image) and checks that every detection scoring at
least ``--score-thr`` has its match (same label, IoU >= 0.99, score within
1e-3) and the masks agree on >= 99% of their pixels (segmentation: the
classes of >= 99% of the pixels).

Needs mmdeploy 1.3.1, installed without its dependency pins (``pip install
--no-deps mmdeploy==1.3.1``; ``tools/setup_env.sh`` does it), with the
``mmdeploy`` extra (``pip install -e .[mmdeploy]``). A mistake of the user's
ends the tool with one line (``--debug``: its traceback too).
"""
import argparse
import os.path as osp
import sys

from mvig2_mm.cli import launcher
from mvig2_mm.cli.images import list_images
from mvig2_mm.cli.tool import ToolError, add_debug_argument, tool_main

PROG = 'tools/deployment/mmdeploy_convert.py'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n\n'.join(__doc__.split('\n\n')[1:]))
    parser.add_argument('config', help='detection or segmentation config')
    parser.add_argument('--checkpoint',
                        help="weights: an mmdet/mmseg checkpoint of the "
                        'config, or a published (reference) checkpoint. '
                        'Without it the weights are random (for trying the '
                        'tool).')
    parser.add_argument('--out', required=True,
                        help='the folder to write end2end.onnx and the SDK '
                        'metadata to')
    parser.add_argument('--deploy-cfg',
                        help='an mmdeploy deploy config (default: the '
                        "project's in configs/deployment/ for the task)")
    parser.add_argument('--image',
                        help='the image to trace the model with (default: '
                        "random colours at the test pipeline's size)")
    parser.add_argument('--no-sdk', action='store_true',
                        help="skip mmdeploy's SDK metadata")
    parser.add_argument('--verify', action='store_true',
                        help='compare the exported model with PyTorch')
    parser.add_argument('--images',
                        help='--verify: an image or a folder of images '
                        '(default: the tracing image)')
    parser.add_argument('--max-images', type=int, default=20,
                        help='--verify: at most this many of --images '
                        '(default: 20)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='--verify: the detections compared (default: '
                        '0.3)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=launcher.StrictDictAction,
        help='override config settings, as key=value pairs')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.images and not args.verify:
        parser.error('--images needs --verify')
    return args


@tool_main(PROG)
def main(argv=None) -> int:
    """Convert with the command line ``argv`` (default: ``sys.argv[1:]``).
    """
    args = parse_args(argv)
    from mvig2_mm.deployment.mmdeploy_compat import check_mmdeploy
    check_mmdeploy()  # before any work
    from mvig2_mm.deployment.end2end import (backend_model,
                                             compare_predictions, convert,
                                             example_input, pipeline_size,
                                             predict)
    cfg = launcher.read_config(args.config, args.cfg_options)
    if args.checkpoint and not launcher.is_url(args.checkpoint) and \
            not osp.isfile(args.checkpoint):
        raise ToolError(f'checkpoint not found: {args.checkpoint}')
    image = list_images(args.image)[0] if args.image else None
    images = list_images(args.images)[:args.max_images] if args.images \
        else None
    if not args.checkpoint:
        print('warning: no --checkpoint, converting random weights',
              file=sys.stderr)
    result = convert(cfg, args.checkpoint, args.out,
                     deploy_config=args.deploy_cfg, image=image,
                     sdk=not args.no_sdk)
    print(f'Wrote {result.onnx_file} (mmdeploy, '
          f'{result.deploy_cfg.backend_config.type}, '
          f'{result.seconds:.1f} s)'
          + (f' and {", ".join(result.sdk_files)}' if result.sdk_files
             else ''))
    if args.verify:
        if images is None:
            images = [image or example_input(pipeline_size(result.model_cfg))]
        expected = predict(result.torch_model, result.model_cfg,
                           result.deploy_cfg, images)
        actual = predict(backend_model(result.onnx_file, result.model_cfg,
                                       result.deploy_cfg),
                         result.model_cfg, result.deploy_cfg, images)
        report = compare_predictions(expected, actual,
                                     score_thr=args.score_thr)
        if not report.passed():
            raise ToolError('verification failed: ' + report.summary() +
                            ''.join(f'; {line}'
                                    for line in report.unmatched[:5]))
        print(f'  onnxruntime == PyTorch: {report.summary()}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
