"""Heads for the task libraries; each needs its library, imported lazily."""
__all__ = []

try:
    from .mobilevigv2_head import MobileViGv2Head  # noqa: F401 (mmpretrain)
    __all__.append('MobileViGv2Head')
except ImportError as e:  # mmpretrain not installed: nothing to register
    if 'mmpretrain' not in str(e):
        raise
