"""Writing an export model (:mod:`.models`) as an ExecuTorch program
(``.pte``) delegated to XNNPACK (the CPU backend of ExecuTorch's Android and
iOS runtimes), in float32 or 8-bit, and checking the file with ExecuTorch's
Python runtime.

The program has a fixed input size: the graph convolutions' shifts are then
slices and concatenations (:func:`~mvig2_mm.models.backbones.base.rolled`),
which XNNPACK takes whole. 8-bit: PT2E post-training quantization with
XNNPACK's quantizer, static (activations calibrated on example inputs),
symmetric, per-channel weights. Needs ``executorch`` and ``torchao``
(``pip install -e .[deploy]``), imported by the functions that use them.
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .checks import TOLERANCE, compare_outputs
from .models import exportable, output_names

__all__ = ['Delegation', 'export', 'quantize', 'runner', 'verify']


@dataclass
class Delegation:
    """How much of a program XNNPACK runs.

    Attributes:
        subgraphs (int): Delegated subgraphs (1: the whole graph in one).
        delegated (int): Operator nodes XNNPACK runs.
        elsewhere (dict[str, int]): Operators left to ExecuTorch's portable
            kernels, with their counts (empty when XNNPACK runs all).
    """
    subgraphs: int
    delegated: int
    elsewhere: Dict[str, int] = field(default_factory=dict)


def quantize(model: nn.Module, example: torch.Tensor,
             calibration: Sequence[torch.Tensor]) -> nn.Module:
    """``model`` quantized to 8 bits with PT2E and XNNPACK's quantizer:
    static, symmetric, per-channel weights, the activations' ranges observed
    on ``calibration``.

    Args:
        model (nn.Module): An export model, in eval mode.
        example (Tensor): An input of the exported size.
        calibration (Sequence[Tensor]): Input batches of that size.

    Returns:
        nn.Module: The quantized graph module (quantize / dequantize nodes
        around float operators, as XNNPACK's partitioner reads them).
    """
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import (convert_pt2e,
                                                         prepare_pt2e)
    quantizer = XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True,
                                          is_dynamic=False))
    with torch.no_grad():
        graph = torch.export.export(model, (example, )).module()
        prepared = prepare_pt2e(graph, quantizer)
        for batch in calibration:
            prepared(batch)
        return convert_pt2e(prepared)


def export(model: nn.Module, shape: Tuple[int, int], path: str,
           calibration: Optional[Sequence[torch.Tensor]] = None,
           batch: int = 1) -> Delegation:
    """Write ``model`` (image -> tensor(s)) to ``path`` as an ExecuTorch
    program for XNNPACK, input (``batch``, 3, H, W) of ``shape``.

    Args:
        model (nn.Module): Image -> tensor(s), in eval mode.
        shape (tuple[int, int]): The input's height and width.
        path (str): The ``.pte`` file to write (its folder is made).
        calibration (Sequence[Tensor], optional): Input batches of the
            program's shape to calibrate an 8-bit program on
            (:func:`quantize`); None: float32.
        batch (int): The input's batch size. Defaults to 1.

    Returns:
        Delegation: What XNNPACK runs and what it does not.

    Raises:
        ImportError: ``executorch`` (or, for 8 bits, ``torchao``) is not
            installed.
    """
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import \
        XnnpackPartitioner
    from executorch.devtools.backend_debug import get_delegation_info
    from executorch.exir import to_edge_transform_and_lower
    example = torch.randn(batch, 3, *shape)
    with torch.no_grad(), exportable(model):
        if calibration is not None:
            model = quantize(model, example, calibration)
        program = torch.export.export(model, (example, ))
        edge = to_edge_transform_and_lower(
            program, partitioner=[XnnpackPartitioner()])
    info = get_delegation_info(edge.exported_program().graph_module)
    elsewhere = {op: counts.non_delegated for op, counts in
                 info.delegation_by_operator.items() if counts.non_delegated}
    elsewhere.pop('getitem', None)  # the outputs of the delegate itself
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'wb') as f:
        edge.to_executorch().write_to_file(f)
    return Delegation(info.num_delegated_subgraphs, info.num_delegated_nodes,
                      elsewhere)


def runner(path: str):
    """The ``forward`` of the program ``path`` in ExecuTorch's runtime, as
    a function of a float32 array (N, 3, H, W) to the outputs as arrays."""
    from executorch.runtime import Runtime
    method = Runtime.get().load_program(path).load_method('forward')
    return lambda x: [out.numpy() for out in method.execute(
        [torch.from_numpy(x)])]


def verify(model: nn.Module, path: str, inputs: Sequence[torch.Tensor],
           tolerance: float = TOLERANCE) -> List[Tuple[tuple, float, float]]:
    """Run the program ``path`` with ExecuTorch's runtime and ``model`` with
    PyTorch on ``inputs`` and compare their outputs
    (:func:`~.checks.compare_outputs`).

    Args:
        model (nn.Module): The model that was exported (float), in eval
            mode.
        path (str): Its ``.pte`` file.
        inputs (Sequence[Tensor]): Input batches of the program's size.
        tolerance (float): The largest difference accepted (``inf`` for an
            8-bit program: its SNR is reported).

    Returns:
        list[tuple[tuple, float, float]]: Per input: its shape, the largest
        difference and the smallest SNR (dB) of its outputs.
    """
    return compare_outputs(model, runner(path), output_names(model), inputs,
                           'ExecuTorch', tolerance)
