"""Export a MobileViG-family model (a classifier or segmentor whole, or a
backbone; deploy form) to ExecuTorch for XNNPACK, float32 or 8-bit.

    python tools/deployment/pytorch2executorch.py \\
        configs/classification/mvig2_ti_in1k.py \\
        --checkpoint work_dirs/mvig2_ti_in1k/epoch_300.pth \\
        --out mvig2_ti.pte --verify
    python tools/deployment/pytorch2executorch.py \\
        configs/classification/mvig2_ti_in1k.py --checkpoint CKPT \\
        --out mvig2_ti_int8.pte --int8 --calib-dir my_images/ --verify

The program (``.pte``) runs in ExecuTorch's Android / iOS / Linux runtimes
on the XNNPACK CPU backend, for a fixed input (1, 3, H, W) of ``--shape``:
the graph convolutions' shifts are slices and concatenations there, so
XNNPACK takes the whole graph (the tool says what it leaves to the portable
kernels, if anything). The outputs are those of pytorch2onnx.py
(``logits``, ``seg_logits`` or ``stage0`` ..), for the normalised image.

``--int8``: PT2E post-training quantization with XNNPACK's quantizer
(static, symmetric, per-channel weights), calibrated on ``--calib`` images
spread over the config's training set, or on the images of ``--calib-dir``
(for users without the dataset), each through the config's test pipeline
and data preprocessor. ``--verify`` runs the file with ExecuTorch's Python
runtime against PyTorch: float32 to 1e-4; 8-bit: the SNR of the outputs
against the float model is reported. Needs ``executorch`` and ``torchao``
(``pip install -e .[deploy]``). A mistake of the user's ends the tool with
one line (``--debug``: its traceback too).
"""
import os.path as osp
import sys

from mvig2_mm.cli.export import (add_int8_args, export_parser, missing_package,
                                 model_and_calibration, parse_int8_export_args,
                                 print_verification, require,
                                 verification_inputs)
from mvig2_mm.cli.tool import tool_main
from mvig2_mm.deployment.checks import TOLERANCE

PROG = 'tools/deployment/pytorch2executorch.py'


def parse_args(argv=None):
    parser = export_parser(PROG, __doc__)
    parser.add_argument('--out', required=True, help='the .pte file to write')
    add_int8_args(parser)
    parser.add_argument('--verify', action='store_true',
                        help="check the file with ExecuTorch's runtime "
                        'against PyTorch')
    return parse_int8_export_args(parser, argv)


@tool_main(PROG)
def main(argv=None) -> int:
    """Export with the command line ``argv`` (default: ``sys.argv[1:]``).
    """
    args = parse_args(argv)
    require('executorch')
    from mvig2_mm.deployment import executorch
    model, calibration = model_and_calibration(args, 'exporting')
    try:
        delegation = executorch.export(model, args.shape, args.out,
                                       calibration)
    except ImportError as e:
        raise missing_package(e, 'torchao') from e
    height, width = args.shape
    rest = ', '.join(f'{op} x{n}' for op, n in delegation.elsewhere.items())
    print(f'Wrote {args.out} ({"8-bit" if args.int8 else "float32"}, '
          f'{osp.getsize(args.out) / 2 ** 20:.1f} MiB): input 1x3x{height}x'
          f'{width}; XNNPACK runs {delegation.delegated} operators in '
          f'{delegation.subgraphs} subgraph(s), '
          + (f'the portable kernels: {rest}' if rest else 'all of them'))
    if args.verify:
        inputs = verification_inputs(calibration, args.shape)
        print_verification(executorch.verify, 'ExecuTorch', model, args.out,
                           inputs, float('inf') if args.int8 else TOLERANCE)
    return 0


if __name__ == '__main__':
    sys.exit(main())
