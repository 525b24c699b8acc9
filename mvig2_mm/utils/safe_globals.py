"""Allow-listing the classes that OpenMMLab and reference checkpoints hold.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``: it refuses
any pickled class that is not allow-listed. mmengine 0.10.7 calls
``torch.load`` without ``weights_only``, so resuming from, or testing, a
checkpoint that mmengine itself wrote fails (its ``message_hub`` holds
``HistoryBuffer`` objects and numpy arrays), and so does loading a reference
MobileViGv2 checkpoint (its ``args`` is an ``argparse.Namespace``).

Rather than turning ``weights_only`` off for everything (checkpoints also come
from the internet), :func:`register_safe_globals` adds exactly these
data-only classes to torch's allow-list. It runs on ``import mvig2_mm``.
"""
import argparse
import collections
import pickle
from typing import Any, List

import numpy as np
import torch


def _numpy_globals() -> List[object]:
    import numpy.dtypes as npd
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    found: List[object] = [np.ndarray, np.dtype, _reconstruct, scalar]
    # dtype classes (numpy >= 1.25 pickles np.dtype('float64') through them)
    found += [getattr(npd, name) for name in dir(npd)
              if name.endswith('DType')]
    # numpy 1.x checkpoints name numpy.core.*, numpy 2 names numpy._core.*
    found += [(_reconstruct, 'numpy.core.multiarray._reconstruct'),
              (scalar, 'numpy.core.multiarray.scalar'),
              (_reconstruct, 'numpy._core.multiarray._reconstruct'),
              (scalar, 'numpy._core.multiarray.scalar')]
    return found


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stands in for ``builtins.getattr`` while unpickling.

    mmengine's ``HistoryBuffer`` keeps its statistics methods in a dict, which
    pickle (protocol 2) writes as ``getattr(HistoryBuffer, 'min')``. Allowing
    ``getattr`` itself would let a crafted file reach any attribute, so only
    the statistics methods of ``HistoryBuffer`` are resolved here.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    allowed = set(HistoryBuffer._statistics_methods) | {
        'min', 'max', 'current', 'mean'}
    if obj is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'weights_only load refused getattr({obj!r}, {name!r}): only '
        f'HistoryBuffer statistics methods are allow-listed by mvig2_mm')


def safe_globals() -> List[object]:
    """The data-only classes that trusted training checkpoints contain."""
    from mmengine.logging.history_buffer import HistoryBuffer
    return [HistoryBuffer, argparse.Namespace, collections.OrderedDict,
            collections.defaultdict,
            (_history_buffer_getattr, 'builtins.getattr')] + _numpy_globals()


def register_safe_globals() -> None:
    """Add :func:`safe_globals` to ``torch.serialization``'s allow-list."""
    if hasattr(torch.serialization, 'add_safe_globals'):
        torch.serialization.add_safe_globals(safe_globals())
