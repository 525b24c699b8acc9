"""Configs of the reference ImageNet classifiers of both families."""
from ..backbones import backbone_class

# the head's embedding width of each variant (the reference's ``emb_dims``)
EMBED_DIMS = dict(
    MobileViGv2=dict(ti=512, s=512, m=512, b=768),
    MobileViG=dict(ti=512, s=512, m=768, b=768),
    GreedyViG=dict(s=768, m=768, b=768))


def imagenet_classifier_cfg(arch: str, num_classes: int = 1000,
                            backbone: str = 'MobileViGv2') -> dict:
    """The mmpretrain classifier config of a variant's reference classifier:
    the backbone and a :class:`MobileViGv2Head` (with its distillation
    classifier; MobileViG's and GreedyViG's have the same layout), as
    ``configs/classification/mvig2_*_in1k.py``, ``mvig_*_in1k.py`` and
    ``greedyvig_*_in1k.py`` build it without the distillation teacher. (A
    ``DistillImageClassifier`` without teacher is an ``ImageClassifier``
    that also loads the published ImageNet files as they are.)

    Args:
        arch (str): ``'ti'``, ``'s'``, ``'m'`` or ``'b'`` (GreedyViG: no
            ``'ti'``).
        num_classes (int): Classes of both classifiers. Defaults to 1000.
        backbone (str): ``'MobileViGv2'``, ``'MobileViG'`` or
            ``'GreedyViG'``. Defaults to ``'MobileViGv2'``.
    """
    channels = backbone_class(backbone).parse_arch(arch)['channels'][-1]
    return dict(
        type='DistillImageClassifier',
        backbone=dict(type=backbone, arch=arch),
        head=dict(type='MobileViGv2Head', num_classes=num_classes,
                  in_channels=channels,
                  emb_dims=EMBED_DIMS[backbone][arch.lower()]))
