"""Data transforms for the task libraries: registered when their library is
installed."""
from importlib.util import find_spec

__all__ = []

if find_spec('mmseg') is not None:
    from .align_resize import AlignResize  # noqa: F401
    __all__.append('AlignResize')
