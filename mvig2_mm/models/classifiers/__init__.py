"""mmpretrain classifiers: registered when mmpretrain is installed."""
from importlib.util import find_spec

__all__ = []

if find_spec('mmpretrain') is not None:
    from .distill_classifier import DistillImageClassifier  # noqa: F401
    __all__.append('DistillImageClassifier')
