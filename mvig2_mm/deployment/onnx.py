"""Writing an export model (:mod:`.models`) as ONNX, and checking the file
against PyTorch with onnxruntime.

Two exporters: the TorchScript-based one (the default; needs only ``onnx``;
dynamic sizes from 32 px) and the ``torch.export``-based one that replaces
it in newer PyTorch (``dynamo=True``; needs ``onnxscript``; dynamic sizes
from 33 px, since torch.export treats a size of 1 apart and the last stage
of a 32 px input is 1x1). onnxruntime is needed for :func:`verify`.
"""
import inspect
import os
import os.path as osp
import warnings
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .checks import TOLERANCE, compare_outputs, random_inputs
from .models import exportable, output_names

__all__ = [
    'DYNAMIC_CHECKS', 'MIN_DYNAMIC_SIZE', 'TOLERANCE', 'export', 'verify'
]

#: Extra (N, H, W) checked after a dynamic export: batch 2; a stage-1 map
#: of 8x8 with K=8 (no shift along either axis); 5x9 (K > height); odd
#: sizes.
DYNAMIC_CHECKS = ((2, 64, 64), (1, 40, 72), (1, 97, 131), (1, 256, 192))
#: Smallest dynamic height / width of each exporter (see the module
#: docstring).
MIN_DYNAMIC_SIZE = dict(torchscript=32, dynamo=33)


def export(model: nn.Module, shape: Tuple[int, int], path: str,
           dynamic: bool = False, opset: Optional[int] = None,
           dynamo: bool = False) -> List[str]:
    """Write ``model`` (image -> tensor(s)) to ``path`` as ONNX.

    The graph's input is ``input`` (N, 3, H, W); its outputs are named as
    :func:`~mvig2_mm.deployment.models.output_names` says.

    Args:
        model (nn.Module): Image -> tensor(s), in eval mode.
        shape (tuple[int, int]): Example input height and width.
        path (str): The ``.onnx`` file to write (its folder is made).
        dynamic (bool): Dynamic batch, height and width.
        opset (int, optional): ONNX opset; 17, or 18 with ``dynamo``.
        dynamo (bool): Use the ``torch.export``-based exporter (needs
            onnxscript) instead of the TorchScript-based one.

    Returns:
        list[str]: The output names.

    Raises:
        ImportError: ``onnx`` (or, with ``dynamo``, ``onnxscript``) is not
            installed.
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
    """Run the ONNX file ``path`` with onnxruntime and ``model`` with
    PyTorch on random inputs of each size, and compare their outputs
    (:func:`~.checks.compare_outputs`).

    Args:
        model (nn.Module): The model that was exported, in eval mode.
        path (str): Its ONNX file.
        sizes (Sequence[tuple[int, int, int]]): Input sizes (N, H, W).

    Returns:
        list[tuple[tuple, float]]: Per size: the input shape and the largest
        difference of its outputs.

    Raises:
        AssertionError: An output's shape differs, or it differs by more
            than :data:`TOLERANCE`.
    """
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    names = [output.name for output in session.get_outputs()]
    report = compare_outputs(
        model, lambda x: session.run(None, {'input': x}), names,
        random_inputs(sizes), 'ONNX')
    return [(shape, diff) for shape, diff, _ in report]
