"""Writing an export model (:mod:`.models`) as an OpenVINO IR (``.xml`` and
``.bin``), in float or 8-bit (NNCF), and checking it with OpenVINO's
runtime.

The IR has a fixed input size (captured with ``torch.export``: the graph
convolutions' shifts are slices, :func:`~mvig2_mm.models.backbones.base.
rolled`). OpenVINO's CPU plugin runs float graphs in bf16 by default on
CPUs with BF16 instructions, which changes the numbers; the precision is
therefore chosen explicitly (``f32`` or ``bf16``), recorded in the IR's
``rt_info`` (``runtime_options``) and passed to every compilation here.
Needs ``openvino`` (and ``nncf`` for 8 bits; ``pip install -e .[deploy]``),
imported by the functions that use them.
"""
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .checks import TOLERANCE, compare_outputs
from .models import exportable, output_names

__all__ = ['FILE_NAME', 'PRECISIONS', 'convert', 'runner', 'verify']

#: The float precisions the CPU plugin can be told to run in.
PRECISIONS = ('f32', 'bf16')
#: The IR's name in its folder (``model.xml`` and ``model.bin``).
FILE_NAME = 'model'
PRECISION_KEY = 'INFERENCE_PRECISION_HINT'


def convert(model: nn.Module, shape: Tuple[int, int], out_dir: str,
            precision: str = 'f32',
            calibration: Optional[Sequence[torch.Tensor]] = None,
            batch: int = 1) -> str:
    """Write ``model`` (image -> tensor(s)) as an OpenVINO IR in
    ``out_dir``, input ``input`` (``batch``, 3, H, W) of ``shape``, the
    outputs named as :func:`~mvig2_mm.deployment.models.output_names` says,
    float32 weights.

    Args:
        model (nn.Module): Image -> tensor(s), in eval mode.
        shape (tuple[int, int]): The input's height and width.
        out_dir (str): The folder to write ``model.xml`` / ``model.bin``
            to (made if needed).
        precision (str): ``'f32'`` or ``'bf16'``: what the CPU plugin runs
            the float operators in (8-bit ones stay 8-bit).
        calibration (Sequence[Tensor], optional): Input batches of the
            IR's shape to quantize it to 8 bits on (NNCF post-training
            quantization); None: float.
        batch (int): The input's batch size. Defaults to 1.

    Returns:
        str: The ``.xml`` file.

    Raises:
        ImportError: ``openvino`` (or, for 8 bits, ``nncf``) is not
            installed.
    """
    import openvino as ov
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, '
                         f'got {precision!r}')
    example = torch.randn(batch, 3, *shape)
    with torch.no_grad(), exportable(model):
        ov_model = ov.convert_model(torch.export.export(model, (example, )))
    ov_model.inputs[0].get_tensor().set_names({'input'})
    for output, name in zip(ov_model.outputs, output_names(model)):
        output.get_tensor().set_names({name})
    if calibration is not None:
        import nncf

        # the full bias correction (not the fast one): measured on the
        # demo classifier, it keeps 0.6-1.2 points of top-1 more
        ov_model = nncf.quantize(
            ov_model, nncf.Dataset([x.numpy() for x in calibration]),
            subset_size=len(calibration), fast_bias_correction=False)
    ov_model.set_rt_info(precision, ['runtime_options', PRECISION_KEY])
    os.makedirs(out_dir, exist_ok=True)
    path = osp.join(out_dir, f'{FILE_NAME}.xml')
    ov.save_model(ov_model, path, compress_to_fp16=False)
    return path


def runner(path: str, precision: Optional[str] = None, threads: int = 0):
    """The IR ``path`` compiled for the CPU, in ``precision`` (None: the one
    its ``rt_info`` records), as a function of a float32 array
    (N, 3, H, W) to the outputs as arrays; the precision the plugin
    actually runs is the function's ``precision`` attribute."""
    import openvino as ov
    core = ov.Core()
    ov_model = core.read_model(path)
    if precision is None:
        precision = ov_model.get_rt_info(
            ['runtime_options', PRECISION_KEY]).astype(str)
    config = {PRECISION_KEY: precision}
    if threads:
        config['INFERENCE_NUM_THREADS'] = threads
    compiled = core.compile_model(ov_model, 'CPU', config)

    def run(x):
        results = compiled(x)
        return [results[output] for output in compiled.outputs]

    run.precision = compiled.get_property(PRECISION_KEY).get_type_name()
    return run


def verify(model: nn.Module, path: str, inputs: Sequence[torch.Tensor],
           tolerance: float = TOLERANCE) -> List[Tuple[tuple, float, float]]:
    """Run the IR ``path`` with OpenVINO (in the precision it records) and
    ``model`` with PyTorch on ``inputs`` and compare their outputs
    (:func:`~.checks.compare_outputs`).

    Args:
        model (nn.Module): The model that was converted (float), in eval
            mode.
        path (str): Its ``.xml`` file.
        inputs (Sequence[Tensor]): Input batches of the IR's size.
        tolerance (float): The largest difference accepted (``inf`` for
            8 bits or bf16: their SNR is reported).

    Returns:
        list[tuple[tuple, float, float]]: Per input: its shape, the largest
        difference and the smallest SNR (dB) of its outputs.
    """
    return compare_outputs(model, runner(path), output_names(model), inputs,
                           'OpenVINO', tolerance)
