"""Checking an exported file's outputs against PyTorch's, the same way for
every runtime (onnxruntime, ExecuTorch, OpenVINO)."""
from typing import Callable, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

__all__ = ['TOLERANCE', 'compare_outputs', 'random_inputs', 'snr_db']

#: Largest difference a float32 file may have (relative above magnitude 1).
TOLERANCE = 1e-4

#: A runtime's forward: an input batch -> its outputs, in order.
Run = Callable[[np.ndarray], Sequence[np.ndarray]]


def random_inputs(sizes: Sequence[Tuple[int, int, int]]
                  ) -> List[torch.Tensor]:
    """Random input batches of the sizes (N, H, W), the same every call."""
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(batch, 3, height, width, generator=generator)
            for batch, height, width in sizes]


def snr_db(output: np.ndarray, expected: np.ndarray) -> float:
    """The signal-to-noise ratio of ``output`` against ``expected``, in dB
    (``inf`` when they are equal)."""
    noise = float(np.mean((output.astype(np.float64) - expected) ** 2))
    signal = float(np.mean(expected.astype(np.float64) ** 2))
    return float('inf') if noise == 0 else 10 * np.log10(signal / noise)


def compare_outputs(model: nn.Module, run: Run, names: Sequence[str],
                    inputs: Sequence[torch.Tensor], runtime: str,
                    tolerance: float = TOLERANCE
                    ) -> List[Tuple[tuple, float, float]]:
    """Run ``model`` with PyTorch and ``run`` on each input, and compare
    their outputs.

    The difference of an output is its largest absolute difference, divided
    by its largest magnitude when that is above 1.

    Args:
        model (nn.Module): The model that was exported, in eval mode.
        run (callable): The file's forward in its runtime.
        names (Sequence[str]): The output names, for the messages.
        inputs (Sequence[Tensor]): Input batches.
        runtime (str): The runtime's name, for the messages.
        tolerance (float): The largest difference accepted; ``inf`` checks
            the shapes only (an 8-bit file).

    Returns:
        list[tuple[tuple, float, float]]: Per input: its shape, the largest
        difference of its outputs and their smallest SNR (dB).

    Raises:
        AssertionError: An output's shape differs, or it differs by more
            than ``tolerance``.
    """
    report = []
    for x in inputs:
        with torch.no_grad():
            expected = model(x)
        if isinstance(expected, torch.Tensor):
            expected = (expected, )
        outputs = run(x.numpy())
        worst, snr = 0., float('inf')
        for name, out, exp in zip(names, outputs, expected):
            exp = exp.numpy()
            if out.shape != exp.shape:
                raise AssertionError(
                    f'input {tuple(x.shape)}: {runtime} {name} has shape '
                    f'{out.shape}, PyTorch {exp.shape}')
            scale = max(1., float(np.abs(exp).max()))
            diff = float(np.abs(out - exp).max()) / scale
            worst, snr = max(worst, diff), min(snr, snr_db(out, exp))
            if diff > tolerance:
                raise AssertionError(
                    f'input {tuple(x.shape)}: {runtime} and PyTorch {name} '
                    f'differ by {diff:.2e} (tolerance {tolerance})')
        report.append((tuple(x.shape), worst, snr))
    return report
