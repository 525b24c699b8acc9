"""MobileViGv2 for the OpenMMLab 2.0 stack (mmdet, mmseg, mmpretrain).

Importing the package registers ``MobileViGv2`` (mmengine's root registry, so
every downstream scope finds it), the mmpretrain head when mmpretrain is
installed, and allow-lists the data-only classes of mmengine checkpoints for
``torch.load(weights_only=True)``.
"""
from .utils import register_safe_globals
from .version import __version__

register_safe_globals()

from . import datasets, models  # noqa: E402,F401  (registers the modules)

__all__ = ['__version__', 'datasets', 'models']
