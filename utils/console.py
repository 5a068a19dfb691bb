"""Console logging for the entry scripts, sharing the terminal with tqdm's progress bars."""
from __future__ import annotations

import contextlib
import logging
import sys
from typing import Iterator

from tqdm.contrib.logging import logging_redirect_tqdm

FORMAT = "%(asctime)s %(levelname)s %(message)s"


class StderrHandler(logging.StreamHandler):
    """A StreamHandler on whatever `sys.stderr` is when a record is written (not when created)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # set by StreamHandler.__init__; the property wins
        pass


def setup_logging(level: int = logging.INFO) -> None:
    """INFO and above on stderr, once (idempotent)."""
    root = logging.getLogger()
    root.setLevel(level)
    if not any(isinstance(h, StderrHandler) for h in root.handlers):
        console = StderrHandler()
        console.setFormatter(logging.Formatter(FORMAT, "%H:%M:%S"))
        root.addHandler(console)


@contextlib.contextmanager
def console_logging() -> Iterator[None]:
    """`setup_logging`, with log lines written through tqdm while the block runs (bars stay intact)."""
    setup_logging()
    with logging_redirect_tqdm():
        yield
