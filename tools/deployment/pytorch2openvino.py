"""Convert a MobileViG-family model (a classifier or segmentor whole, or a
backbone; deploy form) to an OpenVINO IR, float or 8-bit.

    python tools/deployment/pytorch2openvino.py \\
        configs/classification/mvig2_ti_in1k.py \\
        --checkpoint work_dirs/mvig2_ti_in1k/epoch_300.pth \\
        --out mvig2_ti_openvino --precision f32 --verify
    python tools/deployment/pytorch2openvino.py \\
        configs/classification/mvig2_ti_in1k.py --checkpoint CKPT \\
        --out mvig2_ti_openvino_int8 --int8 --calib 64 --verify

Writes ``DIR/model.xml`` and ``DIR/model.bin`` (float32 weights) for a
fixed input (1, 3, H, W) of ``--shape``, captured with ``torch.export`` (the
graph convolutions' shifts are slices there); the input is ``input``, the
outputs are those of pytorch2onnx.py (``logits``, ``seg_logits`` or
``stage0`` ..), for the normalised image.

``--precision f32|bf16`` is what OpenVINO's CPU plugin runs the float
operators in. Stated explicitly because the plugin runs bf16 by default on
CPUs with BF16 instructions (and f32 on the others, which ignore bf16):
the IR records it (``rt_info``: ``runtime_options``) and ``--verify``
prints the precision the plugin actually chose. An application compiling
the IR itself passes ``INFERENCE_PRECISION_HINT``.

``--int8``: NNCF post-training quantization of the IR, calibrated on
``--calib`` images spread over the config's training set, or on the images
of ``--calib-dir``, each through the config's test pipeline and data
preprocessor. ``--verify`` runs the IR with OpenVINO against PyTorch: f32
to 1e-4; bf16 and 8-bit: the SNR of the outputs against the float model is
reported. Needs ``openvino`` and ``nncf`` (``pip install -e .[deploy]``).
A mistake of the user's ends the tool with one line (``--debug``: its
traceback too).
"""
import os.path as osp
import sys

from mvig2_mm.cli.export import (add_int8_args, export_parser, missing_package,
                                 model_and_calibration, parse_int8_export_args,
                                 print_verification, require,
                                 verification_inputs)
from mvig2_mm.cli.tool import tool_main
from mvig2_mm.deployment.checks import TOLERANCE

PROG = 'tools/deployment/pytorch2openvino.py'


def parse_args(argv=None):
    parser = export_parser(PROG, __doc__)
    parser.add_argument('--out', required=True,
                        help='the folder to write model.xml / model.bin to')
    parser.add_argument('--precision', choices=['f32', 'bf16'],
                        required=True,
                        help='what the CPU plugin runs the float operators '
                        'in (its default, bf16 on BF16 CPUs, is not taken '
                        'silently)')
    add_int8_args(parser)
    parser.add_argument('--verify', action='store_true',
                        help='check the IR with OpenVINO against PyTorch')
    return parse_int8_export_args(parser, argv)


@tool_main(PROG)
def main(argv=None) -> int:
    """Convert with the command line ``argv`` (default: ``sys.argv[1:]``).
    """
    args = parse_args(argv)
    require('openvino')
    from mvig2_mm.deployment import openvino
    model, calibration = model_and_calibration(args, 'converting')
    try:
        path = openvino.convert(model, args.shape, args.out, args.precision,
                                calibration)
    except ImportError as e:
        raise missing_package(e, 'nncf') from e
    height, width = args.shape
    size = osp.getsize(path[:-len('.xml')] + '.bin') / 2 ** 20
    print(f'Wrote {path} ({"8-bit" if args.int8 else "float"}, '
          f'{args.precision} float operators; weights {size:.1f} MiB): '
          f'input 1x3x{height}x{width}')
    if args.verify:
        inputs = verification_inputs(calibration, args.shape)
        exact = not args.int8 and args.precision == 'f32'
        ran = openvino.runner(path).precision
        print_verification(openvino.verify, f'OpenVINO ({ran} on this CPU)',
                           model, path, inputs,
                           TOLERANCE if exact else float('inf'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
