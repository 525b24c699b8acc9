from .mobilevigv2 import MobileViGv2

__all__ = ['MobileViGv2']
