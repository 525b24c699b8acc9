"""Export a MobileViGv2 or MobileViG model (a classifier or segmentor whole,
or a backbone; deploy form) to ONNX.

    python tools/deployment/pytorch2onnx.py \\
        configs/classification/mvig2_m_in1k.py \\
        --checkpoint work_dirs/mvig2_m_in1k/epoch_300.pth \\
        --out mvig2_m.onnx --verify
    python tools/deployment/pytorch2onnx.py --arch m \\
        --checkpoint mobilevigv2_m.pth \\
        --backbone-only --dynamic --out mvig2_m_backbone.onnx --verify

The model is converted to its deploy form first (norms, layer scales and the
positional encoding folded into convolutions; the two classifiers merged). A
classifier gives ``logits`` (N, 1000); a segmentor (a Semantic FPN or UperNet
config) gives ``seg_logits`` (N, classes, H, W): per-pixel class logits at
the input's size, as mmseg's inference computes them, for the normalised
image (the segmentor's ``data_preprocessor``: subtract ``mean``, divide by
``std``, RGB); a one-stage detector (RetinaNet, FCOS, ...) gives its head's
raw outputs ``cls_score_{l}``, ``bbox_pred_{l}`` (``score_factor_{l}``),
decoded with mmdet's NMS outside the graph by
``mvig2_mm.deployment.detections_from_outputs``; a backbone
(``--backbone-only``, also from a two-stage detector's config) gives
``stage0`` .. ``stage3``.
``--dynamic`` makes batch, height and width dynamic: the graph's hop-K
shifts are gathers whose indices the graph computes from each stage's size,
leaving an axis whose size is <= K unshifted as the reference does, so the
file is right for every input size, not only the example's. ``--verify``
runs the file with onnxruntime on the example size and, with ``--dynamic``,
on other sizes (including ones where K >= a stage's size) and checks the
outputs against PyTorch (equal to 1e-4, relative to an output's largest
magnitude when that is above 1).

Exporters: by default the TorchScript-based one (``dynamo=False``; needs
only ``onnx``; dynamic sizes from 32 px). ``--dynamo`` uses the
``torch.export``-based one that replaces it in newer PyTorch (needs
``onnxscript``; dynamic sizes from 33 px, since torch.export treats a size
of 1 apart and the last stage of a 32 px input is 1x1). onnxruntime is
needed for ``--verify``. ``pip install -e .[deploy]`` installs all of them.
A mistake of the user's ends the tool with one line (``--debug``: its
traceback too).
"""
import sys

from mvig2_mm.cli.export import (check_model_args, export_parser,
                                 model_from_args)
from mvig2_mm.cli.tool import ToolError, tool_main
from mvig2_mm.deployment import (DYNAMIC_CHECKS, MIN_DYNAMIC_SIZE, export,
                                 verify)

PROG = 'tools/deployment/pytorch2onnx.py'


def parse_args(argv=None):
    parser = export_parser(PROG, __doc__)
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--dynamic', action='store_true',
                        help='dynamic batch, height and width')
    parser.add_argument('--dynamo', action='store_true',
                        help='use the torch.export-based exporter (needs '
                        'onnxscript) instead of the TorchScript-based one')
    parser.add_argument('--opset', type=int,
                        help='ONNX opset. Defaults to 17 (18 with --dynamo).')
    parser.add_argument('--verify', action='store_true',
                        help='check the file with onnxruntime against PyTorch')
    args = parser.parse_args(argv)
    args.shape = check_model_args(parser, args)
    smallest = MIN_DYNAMIC_SIZE['dynamo' if args.dynamo else 'torchscript']
    if args.dynamic and min(args.shape) < smallest:
        parser.error(f'--dynamic with this exporter needs a --shape of at '
                     f'least {smallest}')
    return args


@tool_main(PROG)
def main(argv=None) -> int:
    """Export with the command line ``argv`` (default: ``sys.argv[1:]``).
    """
    args = parse_args(argv)
    model = model_from_args(args, 'exporting')
    height, width = args.shape
    try:
        names = export(model, (height, width), args.out, args.dynamic,
                       args.opset, args.dynamo)
    except ImportError as e:
        raise ToolError(f'{e.name or e} is not installed (pip install -e '
                        f'.[deploy])') from e
    exporter = 'torch.export' if args.dynamo else 'TorchScript'
    print(f'Wrote {args.out} ({exporter} exporter): input (N, 3, H, W) -> '
          f'{", ".join(names)}; '
          + ('dynamic batch, height and width' if args.dynamic
             else f'fixed input 1x3x{height}x{width}'))
    if args.verify:
        sizes = [(1, height, width)]
        if args.dynamic:
            sizes += list(DYNAMIC_CHECKS)
        try:
            report = verify(model, args.out, sizes)
        except ImportError as e:
            raise ToolError(f'{e.name or e} is not installed (pip install '
                            f'-e .[deploy])') from e
        except AssertionError as e:
            raise ToolError(f'verification failed: {e}') from e
        for shape, diff in report:
            print(f'  onnxruntime == PyTorch for input {shape}: largest '
                  f'difference {diff:.1e}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
