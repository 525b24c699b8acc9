"""Convert a MobileViGv2 classifier (deploy form) to Core ML.

    python tools/deployment/pytorch2coreml.py \\
        configs/classification/mvig2_m_in1k.py \\
        --checkpoint work_dirs/mvig2_m_in1k/epoch_300.pth \\
        --out mvig2_m.mlpackage

The model is converted to its deploy form (as for ONNX), traced at a fixed
input size (``--shape``, default 224x224, batch 1) and converted with
coremltools to an ML program (``.mlpackage``; float16 compute by default, as
the paper's iPhone NPU numbers) with one input ``input`` (1, 3, H, W, float
tensor: the image normalised as in training) and one output ``logits``
(1, 1000), or ``stage0`` .. ``stage3`` with ``--backbone-only``. The tool
checks the converted model's input and output names and shapes against the
PyTorch model; running a prediction needs macOS (coremltools cannot run
models on Linux). Needs ``coremltools`` (``pip install -e .[deploy]``).
"""
import os
import os.path as osp
import shutil
import sys
import warnings
from typing import Dict, List, Tuple

import torch
import torch.nn as nn

from mvig2_mm.cli.export import (check_model_args, export_parser,
                                 model_from_args, output_names)


def parse_args(argv=None):
    parser = export_parser(__doc__)
    parser.add_argument('--out', required=True,
                        help='the .mlpackage to write')
    parser.add_argument('--precision', choices=['float16', 'float32'],
                        default='float16',
                        help='compute precision. Defaults to float16.')
    args = parser.parse_args(argv)
    args.shape = check_model_args(parser, args)
    if not args.out.endswith('.mlpackage'):
        parser.error('--out must end in .mlpackage (an ML program)')
    return args


def convert(model: nn.Module, shape: Tuple[int, int],
            precision: str = 'float16'):
    """Trace ``model`` at (1, 3, H, W) and convert it to a Core ML program."""
    import coremltools as ct
    example = torch.zeros(1, 3, *shape)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        traced = torch.jit.trace(model, example)
    return ct.convert(
        traced, inputs=[ct.TensorType(name='input', shape=example.shape)],
        outputs=[ct.TensorType(name=name) for name in output_names(model)],
        convert_to='mlprogram',
        compute_precision=(ct.precision.FLOAT16 if precision == 'float16'
                           else ct.precision.FLOAT32))


def spec_shapes(mlmodel) -> Tuple[Dict[str, List[int]], Dict[str, List[int]]]:
    """(inputs, outputs) of a converted model's spec: name -> shape."""
    description = mlmodel.get_spec().description

    def shapes(features):
        return {f.name: list(f.type.multiArrayType.shape) for f in features}
    return shapes(description.input), shapes(description.output)


def check(mlmodel, model: nn.Module, shape: Tuple[int, int]) -> None:
    """Raise ``AssertionError`` unless the spec's names and shapes are those
    of ``model`` on a (1, 3, H, W) input."""
    with torch.no_grad():
        expected = model(torch.zeros(1, 3, *shape))
    if isinstance(expected, torch.Tensor):
        expected = (expected, )
    inputs, outputs = spec_shapes(mlmodel)
    want_in = {'input': [1, 3, *shape]}
    want_out = {name: list(out.shape)
                for name, out in zip(output_names(model), expected)}
    if inputs != want_in or outputs != want_out:
        raise AssertionError(f'Core ML spec has inputs {inputs} and outputs '
                             f'{outputs}; expected {want_in} and {want_out}')


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import coremltools  # noqa: F401
    except ImportError:
        print('error: coremltools is not installed (pip install -e .[deploy])',
              file=sys.stderr)
        return 1
    model = model_from_args(args, 'converting')
    if model is None:
        return 1
    mlmodel = convert(model, args.shape, args.precision)
    try:
        check(mlmodel, model, args.shape)
    except AssertionError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    if osp.exists(args.out):
        shutil.rmtree(args.out)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    mlmodel.save(args.out)
    inputs, outputs = spec_shapes(mlmodel)
    print(f'Wrote {args.out} ({args.precision}): inputs {inputs}, outputs '
          f'{outputs}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
