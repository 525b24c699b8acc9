"""mmdeploy 1.3.x on a current PyTorch: the compatibility patches, applied
only while a model is converted (:func:`mmdeploy_patched`).

mmdeploy 1.3.1 (January 2024) was written for torch <= 2.1; with torch >= 2.9
its conversion of an mmdet / mmseg model breaks in two places, both outside
our code:

1. ``mmdeploy/apis/onnx/export.py`` calls ``torch.onnx.export`` without
   ``dynamo=``: torch >= 2.9 defaults to the ``torch.export``-based exporter
   ("Detected mismatch between the structure of inputs and dynamic_shapes"),
   while mmdeploy's rewriters (``FUNCTION_REWRITER``, ``SYMBOLIC_REWRITER``)
   hook the TorchScript-based one. While the patch is active,
   ``torch.onnx.export`` defaults to ``dynamo=False``.
2. ``mmdeploy/mmcv/ops/roi_align.py`` (the ONNX symbolic of mmcv's
   ``RoIAlign``, used by Mask R-CNN's RoI extractors) imports ``_cast_Long``
   from ``torch.onnx.symbolic_opset9``, which torch removed (2.2). While the
   patch is active, the module has it again: a ``Cast`` to int64, which is
   what the removed helper emitted.

Both are undone when the context closes. The patches are written for the
mmdeploy versions in :data:`SUPPORTED`; another version stops with one line
(:class:`MMDeployVersionError`), since its code may need other patches or
none.
"""
import functools
from contextlib import contextmanager
from typing import Iterator

import torch

from ..errors import ConfigError

__all__ = [
    'MMDeployVersionError', 'SUPPORTED', 'check_mmdeploy', 'mmdeploy_patched'
]

#: The mmdeploy versions the patches are written for (``major.minor.patch``
#: prefixes).
SUPPORTED = ('1.3.1', )
INSTALL_HINT = ('pip install --no-deps mmdeploy==1.3.1 (tools/setup_env.sh '
                'installs it)')


class MMDeployVersionError(ConfigError):
    """mmdeploy is missing, or of a version the patches were not written
    for."""


def check_mmdeploy() -> str:
    """The installed mmdeploy's version.

    Raises:
        MMDeployVersionError: It is not installed, or not one of
            :data:`SUPPORTED`.
    """
    try:
        import mmdeploy
    except ImportError as e:
        raise MMDeployVersionError(
            f'mmdeploy is not installed: {INSTALL_HINT}') from e
    version = getattr(mmdeploy, '__version__', 'unknown')
    if version not in SUPPORTED:
        raise MMDeployVersionError(
            f'mmdeploy {version} is installed; the conversion is written for '
            f'mmdeploy {", ".join(SUPPORTED)} (its compatibility patches in '
            f'mvig2_mm/deployment/mmdeploy_compat.py): {INSTALL_HINT}')
    return version


def _cast_long(g, value, non_blocking):  # the signature of the removed one
    from torch.onnx import TensorProtoDataType
    return g.op('Cast', value, to_i=TensorProtoDataType.INT64)


@contextmanager
def mmdeploy_patched() -> Iterator[None]:
    """The patches of the module docstring, active while the context is
    open (after :func:`check_mmdeploy`).

    Raises:
        MMDeployVersionError: mmdeploy is missing or of another version.
    """
    check_mmdeploy()
    import torch.onnx.symbolic_opset9 as opset9
    export = torch.onnx.export

    @functools.wraps(export)
    def torchscript_export(*args, **kwargs):
        kwargs.setdefault('dynamo', False)
        return export(*args, **kwargs)

    added_cast = not hasattr(opset9, '_cast_Long')
    torch.onnx.export = torchscript_export
    if added_cast:
        opset9._cast_Long = _cast_long
    try:
        yield
    finally:
        torch.onnx.export = export
        if added_cast:
            del opset9._cast_Long
