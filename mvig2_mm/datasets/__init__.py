"""Data pieces for the task libraries; each needs its library (guarded)."""
from .transforms import *  # noqa: F401,F403
