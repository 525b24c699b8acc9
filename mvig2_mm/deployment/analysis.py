"""Counting a model's parameters and multiply-adds."""
from typing import Tuple

import torch
import torch.nn as nn

__all__ = ['count']


def count(model: nn.Module, shape: Tuple[int, int]) -> Tuple[int, int]:
    """Parameters and multiply-adds (MACs) of ``model`` for one input.

    MACs are counted by mmengine's ``FlopAnalyzer`` (convolutions, matmuls,
    norms; not elementwise operations such as the graph convolutions'
    max and roll). The model is put in eval mode.

    Args:
        model (nn.Module): Takes a (1, 3, H, W) tensor.
        shape (tuple[int, int]): The input's height and width.

    Returns:
        tuple[int, int]: (parameters, MACs).
    """
    from mmengine.analysis import FlopAnalyzer
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        analyzer = FlopAnalyzer(model, (torch.zeros(1, 3, *shape), ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        macs = analyzer.total()
    return params, macs
