"""Python entry points for users' own scripts and configs."""
from .swap_backbone import swap_backbone

__all__ = ['swap_backbone']
