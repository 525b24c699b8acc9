"""One export model in each runtime the project ships it to, float and
8-bit, as functions of an input batch: what the benchmark times side by
side (``tools/analysis_tools/benchmark.py``, table 7).

Each runtime is built by the project's own export code (:mod:`.onnx`,
:mod:`.openvino`, :mod:`.executorch`) into a temporary folder; the packages
a runtime needs are imported when it is built (``pip install -e
.[deploy]``).
"""
import os
import os.path as osp
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from .models import exportable

__all__ = [
    'RUNTIMES', 'Deployed', 'calibration_batches', 'compile_frozen', 'deploy',
    'onnxruntime_session'
]

#: The runtimes, in the benchmark's order: key -> (name, file, bits).
RUNTIMES = {
    'eager': ('PyTorch eager', '', 32),
    'compiled': ('PyTorch compiled', '', 32),
    'x86-int8': ('PT2E x86 8-bit, compiled', '', 8),
    'onnxruntime': ('ONNX Runtime', 'model.onnx', 32),
    'openvino-f32': ('OpenVINO f32', 'f32/model.xml', 32),
    'openvino-bf16': ('OpenVINO bf16', 'bf16/model.xml', 32),
    'openvino-int8': ('OpenVINO 8-bit (NNCF)', 'int8/model.xml', 8),
    'executorch': ('ExecuTorch XNNPACK', 'model.pte', 32),
    'executorch-int8': ('ExecuTorch XNNPACK 8-bit', 'model_int8.pte', 8),
}


@dataclass
class Deployed:
    """A model in one runtime.

    Attributes:
        run (callable): Input batch (Tensor) -> its outputs (a Tensor, an
            array or a list of them).
        seconds (float): Export, conversion or compilation time (for a
            compiled model: its first call).
        file_bytes (int, optional): Size of the file(s) written (None for
            the PyTorch runtimes).
        note (str): What the runtime chose (OpenVINO's precision,
            ExecuTorch's delegation), empty if nothing.
    """
    run: Callable[[torch.Tensor], object]
    seconds: float
    file_bytes: Optional[int] = None
    note: str = ''


def calibration_batches(images: Sequence[torch.Tensor],
                        batch: int) -> List[torch.Tensor]:
    """Calibration inputs of ``batch`` images each from single images
    (1, 3, H, W): as many batches as images, each image in ``batch`` of
    them (a static 8-bit graph takes only its own batch size)."""
    count = len(images)
    return [torch.cat([images[(i + j) % count] for j in range(batch)])
            for i in range(count)]


def deploy(runtime: str, model: nn.Module, shape: Tuple[int, int],
           batch: int, work_dir: str,
           calibration: Sequence[torch.Tensor] = (),
           threads: int = 0) -> Deployed:
    """``model`` in ``runtime`` (a key of :data:`RUNTIMES`), for inputs
    (``batch``, 3, H, W) of ``shape``.

    Args:
        runtime (str): The runtime.
        model (nn.Module): An export model (image -> tensor(s)) in its
            deploy form, eval mode.
        shape (tuple[int, int]): The input's (H, W).
        batch (int): The input's batch size.
        work_dir (str): A folder to write the files to.
        calibration (Sequence[Tensor]): Input batches (of the runtime's
            input shape) that an 8-bit runtime is calibrated on.
        threads (int): Threads of the non-PyTorch runtimes (0: theirs).

    Returns:
        Deployed: The runtime's forward and what building it took.
    """
    if runtime not in RUNTIMES:
        raise KeyError(f'unknown runtime {runtime!r} (one of '
                       f'{", ".join(RUNTIMES)})')
    _, file_name, bits = RUNTIMES[runtime]
    if bits == 8 and not calibration:
        raise ValueError(f'{runtime} needs calibration inputs')
    path = osp.join(work_dir, file_name)
    example = torch.randn(batch, 3, *shape)
    start = time.perf_counter()
    note = ''
    if runtime == 'eager':
        run = _inference(model)
    elif runtime in ('compiled', 'x86-int8'):
        if runtime == 'x86-int8':
            model = _x86_quantized(model, example, calibration)
        # one static graph: the runtime is built for one batch size
        run = _inference(compile_frozen(model, dynamic=False))
        run(example)  # compiles
    elif runtime == 'onnxruntime':
        from .onnx import export
        export(model, shape, path, dynamic=True)
        session = onnxruntime_session(path, threads)
        run = _from_arrays(lambda x: session.run(None, {'input': x}))
    elif runtime.startswith('openvino'):
        from . import openvino
        precision = 'bf16' if runtime == 'openvino-bf16' else 'f32'
        xml = openvino.convert(model, shape, osp.dirname(path), precision,
                               calibration if bits == 8 else None, batch)
        forward = openvino.runner(xml, threads=threads)
        note = f'runs {forward.precision}'
        run = _from_arrays(forward)
    else:  # ExecuTorch
        from . import executorch
        delegation = executorch.export(model, shape, path,
                                       calibration if bits == 8 else None,
                                       batch)
        note = f'{delegation.subgraphs} XNNPACK subgraph(s)'
        if delegation.elsewhere:
            note += ', portable: ' + ', '.join(
                f'{count} {op}' for op, count in delegation.elsewhere.items())
        run = _from_arrays(executorch.runner(path))
    seconds = time.perf_counter() - start
    return Deployed(run, seconds, _bytes(path) if file_name else None, note)


def compile_frozen(model: Callable, **options) -> Callable:
    """``torch.compile`` (inductor) of an inference model, or of a
    module's forward, with its weights frozen as constants (inductor's
    ``freezing``: the convolutions prepacked for oneDNN, BatchNorm folded
    into them) and its kernels launched from C++ (inductor's
    ``cpp_wrapper``); call the result without gradients (e.g. under
    ``torch.inference_mode()``), with the model's arguments.

    Both settings are set in inductor's config while the result runs (any
    call may compile: a new input shape), as PyTorch's CPU inductor and
    x86 PT2E tutorials set them: ``torch.compile(options={'freezing':
    True})`` leaves the weights unfrozen in torch 2.13 (measured on
    MobileViGv2-M, batch 1, 2 threads: 24.9 ms with it, 16.7 ms frozen,
    eager 26.8 ms), and an 8-bit PT2E graph fails to compile with it
    (``onednn.qconv_prepack`` has no fake-tensor kernel). The C++ wrapper
    saves the Python call of each of the many small kernels at batch 1, at
    the cost of a longer compile (measured in docs/benchmarks.md). Other
    backends ignore both flags.

    Args:
        model (callable): The model in eval mode, or its ``forward``.
        **options: Keyword arguments of ``torch.compile`` (e.g.
            ``fullgraph=True``).
    """
    import torch._inductor.config as inductor_config
    compiled = torch.compile(model, **options)

    def run(*args, **kwargs):
        with inductor_config.patch(freezing=True, cpp_wrapper=True):
            return compiled(*args, **kwargs)
    return run


def onnxruntime_session(path: str, threads: int = 0):
    """An ONNX Runtime CPU session of ``path`` for timing beside other
    runtimes: ``threads`` intra-op threads (0: its default), one inter-op
    thread, and no spinning (idle threads that spin would slow the runtimes
    timed in between)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    return ort.InferenceSession(path, options,
                                providers=['CPUExecutionProvider'])


def _inference(model: nn.Module) -> Callable[[torch.Tensor], object]:
    def run(x: torch.Tensor):
        with torch.inference_mode():
            return model(x)
    return run


def _from_arrays(forward: Callable[[np.ndarray], Sequence[np.ndarray]]
                 ) -> Callable[[torch.Tensor], object]:
    return lambda x: forward(x.numpy())


def _x86_quantized(model: nn.Module, example: torch.Tensor,
                   calibration: Sequence[torch.Tensor]) -> nn.Module:
    """PT2E static 8-bit quantization for inductor on x86 (torchao's
    ``X86InductorQuantizer``, its default: per-channel weights)."""
    from torchao.quantization.pt2e.quantize_pt2e import (convert_pt2e,
                                                         prepare_pt2e)
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer, get_default_x86_inductor_quantization_config)
    quantizer = X86InductorQuantizer().set_global(
        get_default_x86_inductor_quantization_config())
    with torch.no_grad(), exportable(model):
        graph = torch.export.export(model, (example, )).module()
        prepared = prepare_pt2e(graph, quantizer)
        for x in calibration:
            prepared(x)
        return convert_pt2e(prepared)


def _bytes(path: str) -> int:
    """Bytes of the file ``path`` (an IR: its ``.xml`` and ``.bin``)."""
    paths = [path]
    if path.endswith('.xml'):
        paths.append(path[:-len('.xml')] + '.bin')
    return sum(os.path.getsize(p) for p in paths)
