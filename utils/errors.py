"""User-facing errors: one line naming the culprit, exit code 2."""
from __future__ import annotations

import difflib
import functools
import logging
import sys
from typing import Callable, Iterable, TypeVar

EXIT_USER_ERROR = 2
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


def cli_main(func: F) -> F:
    """Wrap an entry point: a `UserError` becomes one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserError as err:
            logging.getLogger(__name__).debug("user error", exc_info=True)
            print(f"error: {err}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)

    return wrapper  # type: ignore[return-value]
