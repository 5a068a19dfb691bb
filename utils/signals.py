"""Graceful stop on SIGINT (Ctrl-C) and SIGTERM (what clusters send before preemption) during training; outside
it, SIGTERM raised as `Terminated` so `finally` blocks remove temp files (`sigterm_raises`), and both signals held
back while files that belong together are renamed (`signals_deferred`)."""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
from typing import Iterator, Optional

LOG = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Set by a signal handler; polled by the training loop between steps."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None

    def __bool__(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """Shell convention: 128 + signal number."""
        return 128 + (self.signum or 0)


@contextlib.contextmanager
def graceful_stop() -> Iterator[StopRequest]:
    """Turn SIGINT/SIGTERM into a `StopRequest`; a second signal interrupts at once."""
    request = StopRequest()
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        if request:
            signal.default_int_handler(signum, frame)
        request.signum = signum
        LOG.warning("%s received: stopping after the current step", signal.Signals(signum).name)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class Terminated(KeyboardInterrupt):
    """SIGTERM as an exception: like Ctrl-C, it unwinds the stack, so temp files are removed on the way out."""


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM raises `Terminated` inside the block (Python's default for it ends the process on the spot,
    leaving temp files behind)."""
    if not _in_main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        raise Terminated(signal.Signals(signum).name)
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM held back for the block and delivered after it, to the handlers in place before (e.g. a
    model and its sidecar renamed into place together: never one without the other)."""
    if not _in_main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        for signum in caught:
            signal.raise_signal(signum)
