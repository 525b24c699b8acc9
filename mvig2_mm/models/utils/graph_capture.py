"""Telling a forward that records a graph from one that computes."""
import torch

_is_compiling = getattr(torch.compiler, 'is_compiling', lambda: False)


def capturing_graph() -> bool:
    """Whether the code runs to record a graph rather than to compute:
    tracing, scripting, ``torch.compile`` or ``torch.export``. Covers both
    ONNX exporters (the TorchScript-based one traces; the dynamo-based one
    runs torch.export, which sets the compiling flag)."""
    return (torch.jit.is_tracing() or torch.jit.is_scripting()
            or _is_compiling())
