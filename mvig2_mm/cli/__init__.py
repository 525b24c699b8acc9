"""Command-line support of ``tools/``: the tools' error policy
(:mod:`.tool`), what the launchers share (config loading, pre-flight checks
of data and checkpoints, running the Runner) and the argument plumbing of
the export tools. Nothing here is needed to build, run or export a model
from Python (see :mod:`mvig2_mm.deployment`).

Importing it silences setuptools' ``pkg_resources is deprecated`` warning,
which mmengine (``is_installed``) and mim print two to four times in every
tool's output; the warning is about their code, and nothing a user of the
tools can act on. Every tool imports this package before the libraries
get to that code.
"""
import warnings

warnings.filterwarnings('ignore', message='pkg_resources is deprecated',
                        category=UserWarning)
