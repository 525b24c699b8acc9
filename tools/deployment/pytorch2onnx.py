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
``std``, RGB); a backbone (``--backbone-only``, also from a detection config)
gives ``stage0`` .. ``stage3``.
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
"""
import inspect
import os
import os.path as osp
import sys
import warnings
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from mvig2_mm.cli.export import (check_model_args, export_parser, exportable,
                                 model_from_args, output_names)

# Extra sizes checked by --verify --dynamic: batch 2; a stage-1 map of 8x8
# with K=8 (no shift along either axis); 5x9 (K > height); odd sizes.
DYNAMIC_CHECKS = ((2, 64, 64), (1, 40, 72), (1, 97, 131), (1, 256, 192))
TOLERANCE = 1e-4
# smallest dynamic height/width of each exporter (see the module docstring)
MIN_DYNAMIC_SIZE = dict(torchscript=32, dynamo=33)


def parse_args(argv=None):
    parser = export_parser(__doc__)
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


def export(model: nn.Module, shape: Tuple[int, int], path: str,
           dynamic: bool = False, opset: Optional[int] = None,
           dynamo: bool = False) -> List[str]:
    """Write ``model`` (image -> tensor(s)) to ``path``; return the output
    names.

    Args:
        model (nn.Module): Image -> tensor(s), in eval mode.
        shape (tuple[int, int]): Example input height and width.
        path (str): The ``.onnx`` file to write.
        dynamic (bool): Dynamic batch, height and width.
        opset (int, optional): ONNX opset; 17, or 18 with ``dynamo``.
        dynamo (bool): Use the ``torch.export``-based exporter (needs
            onnxscript) instead of the TorchScript-based one.
    """
    import onnx  # noqa: F401  (needed by the exporter; a clear error early)
    if dynamo:
        import onnxscript  # noqa: F401  (the same)
    names = output_names(model)
    x = torch.randn(1, 3, *shape)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings(), exportable(model):
        warnings.filterwarnings('ignore', category=DeprecationWarning)
        warnings.filterwarnings('ignore', category=FutureWarning)
        if dynamo:
            dims = None
            if dynamic:
                dim = torch.export.Dim
                size = MIN_DYNAMIC_SIZE['dynamo']
                dims = ({0: dim('batch', min=1, max=1024),
                         2: dim('height', min=size, max=16384),
                         3: dim('width', min=size, max=16384)}, )
            torch.onnx.export(model, (x, ), path, input_names=['input'],
                              output_names=names, dynamo=True,
                              dynamic_shapes=dims, opset_version=opset or 18,
                              verbose=False)
            return names
        dynamic_axes = None
        if dynamic:
            dynamic_axes = {'input': {0: 'batch', 2: 'height', 3: 'width'}}
            for name in names:
                dynamic_axes[name] = {0: 'batch'} if name == 'logits' else {
                    0: 'batch', 2: f'{name}_height', 3: f'{name}_width'}
            if names == ['seg_logits']:  # at the input's size
                dynamic_axes['seg_logits'] = dynamic_axes['input']
        kwargs = {}
        if 'dynamo' in inspect.signature(torch.onnx.export).parameters:
            kwargs['dynamo'] = False  # the TorchScript exporter
        torch.onnx.export(
            model, (x, ), path, input_names=['input'], output_names=names,
            dynamic_axes=dynamic_axes, opset_version=opset or 17,
            do_constant_folding=True, **kwargs)
    return names


def verify(model: nn.Module, path: str,
           sizes: Sequence[Tuple[int, int, int]]) -> List[Tuple[tuple, float]]:
    """Run ``path`` with onnxruntime and ``model`` with PyTorch on random
    inputs of each (N, H, W). The difference of an output is its largest
    absolute difference, divided by its largest magnitude when that is above
    1. Returns (input shape, largest difference); raises ``AssertionError``
    where an output differs by more than 1e-4."""
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    report = []
    generator = torch.Generator().manual_seed(0)
    for batch, height, width in sizes:
        x = torch.randn(batch, 3, height, width, generator=generator)
        with torch.no_grad():
            expected = model(x)
        if isinstance(expected, torch.Tensor):
            expected = (expected, )
        outputs = session.run(None, {'input': x.numpy()})
        worst = 0.
        for name, out, exp in zip(session.get_outputs(), outputs, expected):
            exp = exp.numpy()
            if out.shape != exp.shape:
                raise AssertionError(
                    f'input {tuple(x.shape)}: ONNX {name.name} has shape '
                    f'{out.shape}, PyTorch {exp.shape}')
            scale = max(1., float(np.abs(exp).max()))
            diff = float(np.abs(out - exp).max()) / scale
            worst = max(worst, diff)
            if diff > TOLERANCE:
                raise AssertionError(
                    f'input {tuple(x.shape)}: ONNX and PyTorch {name.name} '
                    f'differ by {diff:.2e} (tolerance {TOLERANCE})')
        report.append((tuple(x.shape), worst))
    return report


def main(argv=None) -> int:
    args = parse_args(argv)
    model = model_from_args(args, 'exporting')
    if model is None:
        return 1
    height, width = args.shape
    try:
        names = export(model, (height, width), args.out, args.dynamic,
                       args.opset, args.dynamo)
    except ImportError as e:
        print(f'error: {e.name or e} is not installed (pip install -e '
              f'.[deploy])', file=sys.stderr)
        return 1
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
        except AssertionError as e:
            print(f'error: verification failed: {e}', file=sys.stderr)
            return 1
        for shape, diff in report:
            print(f'  onnxruntime == PyTorch for input {shape}: largest '
                  f'difference {diff:.1e}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
