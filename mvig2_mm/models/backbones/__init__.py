from .base import MobileViGBase
from .mobilevig import MobileViG
from .mobilevigv2 import MobileViGv2

__all__ = ['MobileViGBase', 'MobileViG', 'MobileViGv2']
