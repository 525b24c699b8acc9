"""mmpretrain classifiers: registered when mmpretrain is installed."""
from importlib.util import find_spec

from .presets import imagenet_classifier_cfg

__all__ = ['imagenet_classifier_cfg']

if find_spec('mmpretrain') is not None:
    from .distill_classifier import DistillImageClassifier  # noqa: F401
    __all__.append('DistillImageClassifier')
