"""Graceful stop on SIGINT (Ctrl-C) and SIGTERM (what clusters send before preemption)."""
from __future__ import annotations

import contextlib
import logging
import signal
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
