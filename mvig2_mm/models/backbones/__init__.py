from ...errors import ConfigError
from .base import MobileViGBase
from .greedyvig import GreedyViG
from .mobilevig import MobileViG
from .mobilevigv2 import MobileViGv2

#: The MobileViG family by name, as configs and tools name the backbones.
BACKBONES = dict(MobileViGv2=MobileViGv2, MobileViG=MobileViG,
                 GreedyViG=GreedyViG)


def backbone_class(name: str) -> type:
    """The backbone class called ``name`` ('MobileViGv2', 'MobileViG' or
    'GreedyViG')."""
    if name not in BACKBONES:
        raise ConfigError(f'backbone must be one of {sorted(BACKBONES)}, '
                          f'got {name!r}')
    return BACKBONES[name]


__all__ = ['MobileViGBase', 'MobileViG', 'MobileViGv2', 'GreedyViG',
           'BACKBONES', 'backbone_class']
