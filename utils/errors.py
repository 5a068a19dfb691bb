"""User-facing errors: one line naming the culprit, exit code 2."""
from __future__ import annotations

import difflib
from typing import Iterable


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
