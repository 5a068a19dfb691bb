"""User-facing errors: one line naming the culprit, exit code 2."""
from __future__ import annotations

import difflib
import functools
import logging
import sys
from typing import Any, Callable, Iterable, TypeVar

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
F = TypeVar("F", bound=Callable[..., object])


class UserError(Exception):
    """A problem in the user's input (config, data, checkpoint) rather than a bug."""


class ConfigError(UserError):
    """Invalid configuration file or override."""


class DataError(UserError):
    """Missing, malformed or unreadable data."""


def did_you_mean(value: str, choices: Iterable[str], n: int = 3) -> str:
    """A ' (did you mean: a, b?)' hint, or '' when nothing is close."""
    close = difflib.get_close_matches(value, list(choices), n=n, cutoff=0.5)
    return f" (did you mean: {', '.join(close)}?)" if close else ""


def first_line(err: BaseException) -> str:
    """The first line of an error's message, or its class name when it has none."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else err.__class__.__name__


def one_line(err: BaseException) -> str:
    """The error's message on one line. Errors re-raised from DataLoader workers carry the
    worker's traceback in their message; keep only its last line, without the class name."""
    text = str(err).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return " ".join(text.split())


def describe(err: BaseException) -> str:
    """One line for a user error or an OS error (naming its file)."""
    if isinstance(err, OSError) and not isinstance(err, UserError) and err.filename is not None:
        return f"{err.filename}: {err.strerror or err.__class__.__name__}"
    return one_line(err)


def cli_main(func: F) -> F:
    """Wrap an entry point: console logging shared with progress bars; a `UserError`, or an operating-
    system error on a file the user named (read-only, missing, a directory, disk full...), becomes one
    line on stderr and exit code 2; Ctrl-C outside training is one line and exit code 130."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from utils.console import console_logging

        try:
            with console_logging():
                return func(*args, **kwargs)
        except (UserError, OSError) as err:
            logging.getLogger(__name__).debug("user error", exc_info=True)
            print(f"error: {describe(err)}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def as_script(func: Callable[..., Any]) -> Callable[[], None]:
    """`func` (a `main(argv=None)`) as a console-script entry point: the value `main` returns for its
    callers and tests is not an exit status, so the script returns None (exit 0)."""

    @functools.wraps(func)
    def script() -> None:
        func()

    return script
