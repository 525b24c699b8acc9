"""Heads for the task libraries: registered when their library is installed."""
from importlib.util import find_spec

__all__ = []

if find_spec('mmpretrain') is not None:
    from .mobilevigv2_head import MobileViGv2Head  # noqa: F401
    __all__.append('MobileViGv2Head')
