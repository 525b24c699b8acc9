"""How every tool in ``tools/`` ends on an error.

A mistake of the user's ends the tool with one line on stderr,
``tools/NAME.py: error: MESSAGE``, and exit status 1; ``--debug`` prints the
exception's traceback before that line. The mistakes are a short,
explicit list (:func:`user_error_message`):

- :class:`ToolError`, raised by the tools themselves (a bad command-line
  value, a file that is missing or unreadable, ...);
- :class:`mvig2_mm.errors.ConfigError`: a config value that cannot work
  (raised by the project's modules; mmengine's registry passes it on as
  it is);
- mmengine's registry ``KeyError`` for an unknown ``type``, recognised by
  its message (``... is not in the ... registry``);
- :class:`mvig2_mm.weights.CheckpointMismatchError`;
- :class:`mvig2_mm.cli.data_checks.DataCheckError` (the pre-flight checks
  of the datasets);
- ``FileNotFoundError``: a file the user named (a checkpoint, an
  annotation file, an image) is not there;
- an image the data pipeline cannot read
  (:func:`mvig2_mm.cli.data_checks.describe_load_error`).

argparse's own usage errors (and ``--cfg-options`` without ``=``) exit with
status 2 before any of this. Every other exception is a bug (ours, a
library's or one in a user's own module) and keeps its full traceback: it
is not caught.
"""
import argparse
import functools
import sys
import traceback
from typing import Callable, Optional, Sequence, TypeVar

from ..errors import ConfigError
from ..weights import CheckpointMismatchError
from .checkpoints import first_line
from .data_checks import DataCheckError, describe_load_error

__all__ = [
    'ToolError', 'add_debug_argument', 'is_registry_key_error',
    'tool_main', 'user_error_message'
]

Main = TypeVar('Main', bound=Callable)


class ToolError(SystemExit):
    """A mistake of the user's that a tool reports as one line; the message
    names the problem (and its fix), without the tool's name.

    Raised where the mistake is found; :func:`tool_main` prints it. It is a
    ``SystemExit`` (``code`` is the message), so that a tool's helper called
    on its own (from a test, or a script) still stops as ``sys.exit(message)``
    would, and an ``except Exception`` does not swallow it.
    """


def add_debug_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--debug`` option that every tool has."""
    parser.add_argument(
        '--debug', action='store_true',
        help='on an error that is reported in one line, print its traceback '
        'too (for a bug report)')


def is_registry_key_error(exc: BaseException) -> bool:
    """Whether ``exc`` is mmengine's ``KeyError`` for a ``type`` that is not
    registered (``'Foo is not in the mmdet::model registry. ...'``)."""
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else ''
    return isinstance(text, str) and ' is not in the ' in text and \
        ' registry' in text


def _text(exc: BaseException) -> str:
    """The message of ``exc``, one line. An error re-raised by a
    ``DataLoader`` worker carries the worker's traceback as its text: its
    last line is the original error's (``ErrorType: message``)."""
    line = first_line(exc)
    if line.startswith('Caught ') and 'DataLoader worker' in line:
        last = str(exc).strip().splitlines()[-1]
        name, _, message = last.partition(': ')
        return message.strip() if message and ' ' not in name else last
    return line


def user_error_message(exc: BaseException) -> Optional[str]:
    """The one line that reports ``exc``, when it is one of the listed
    user mistakes (see the module docstring); None for any other exception
    (a bug: it keeps its traceback)."""
    if isinstance(exc, ToolError):
        return str(exc)
    if isinstance(exc, (ConfigError, CheckpointMismatchError,
                        DataCheckError)) or is_registry_key_error(exc):
        return _text(exc)
    described = describe_load_error(exc)
    if described is not None:
        return described
    if isinstance(exc, FileNotFoundError):
        if exc.filename and exc.strerror:  # raised by the OS
            return f'{exc.strerror}: {exc.filename}'
        return _text(exc)
    return None


def _wants_debug(argv: Sequence[str]) -> bool:
    """Whether the command line asks for ``--debug`` (read before the tool
    parses it, so that an error while parsing is covered too)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_debug_argument(parser)
    return parser.parse_known_args(list(argv))[0].debug


def tool_main(prog: str) -> Callable[[Main], Main]:
    """Decorate a tool's ``main(argv=None)`` with the error policy of the
    tools (see the module docstring).

    A listed user mistake raised by ``main`` is printed to stderr as ``PROG:
    error: MESSAGE`` (after its traceback when the command line has
    ``--debug``) and ``main`` returns 1, the exit status. Any other
    exception propagates unchanged, and so does argparse's ``SystemExit``
    for a usage error.

    Args:
        prog (str): The tool as a user runs it, e.g. ``'tools/train.py'``.
    """
    def decorate(main: Main) -> Main:
        @functools.wraps(main)
        def wrapper(argv: Optional[Sequence[str]] = None, *args, **kwargs):
            try:
                return main(argv, *args, **kwargs)
            except (ToolError, Exception) as exc:
                message = user_error_message(exc)
                if message is None:
                    raise
                if _wants_debug(sys.argv[1:] if argv is None else argv):
                    traceback.print_exception(exc, file=sys.stderr)
                sys.stdout.flush()
                print(f'{prog}: error: {message}', file=sys.stderr,
                      flush=True)
                return 1
        return wrapper  # type: ignore[return-value]
    return decorate
