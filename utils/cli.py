"""Entry points as users meet them: a `UserError` or an OS error on a named file is one line on stderr and
exit code 2, Ctrl-C one line and 130, SIGTERM one line and 143, each after temp files are removed (`cli_main`);
`main()` as a console script (`as_script`)."""
from __future__ import annotations

import functools
import logging
import sys
from typing import Any, Callable, TypeVar

from utils.errors import UserError, one_line

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM
F = TypeVar("F", bound=Callable[..., object])


def describe(err: BaseException) -> str:
    """One line for a user error or an OS error (naming its file)."""
    if isinstance(err, OSError) and not isinstance(err, UserError) and err.filename is not None:
        return f"{err.filename}: {err.strerror or err.__class__.__name__}"
    return one_line(err)


def cli_main(func: F) -> F:
    """Wrap an entry point: console logging shared with progress bars; a `UserError`, or an operating-
    system error on a file the user named (read-only, missing, a directory, disk full...), becomes one
    line on stderr and exit code 2; Ctrl-C outside training is one line and exit code 130, SIGTERM one line
    and 143: both unwind the stack first, so temp files are removed and earlier outputs stay as they were."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from utils.console import console_logging
        from utils.signals import Terminated, sigterm_raises

        try:
            with console_logging(), sigterm_raises():
                return func(*args, **kwargs)
        except (UserError, OSError) as err:
            logging.getLogger(__name__).debug("user error", exc_info=True)
            print(f"error: {describe(err)}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        except Terminated:
            print("terminated (SIGTERM): earlier outputs kept, nothing half-written", file=sys.stderr)
            sys.exit(EXIT_TERMINATED)
        except KeyboardInterrupt:
            print("interrupted: earlier outputs kept, nothing half-written", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def as_script(func: Callable[..., Any]) -> Callable[[], None]:
    """`func` (a `main(argv=None)`) as a console-script entry point: the value `main` returns for its
    callers and tests is not an exit status, so the script returns None (exit 0)."""

    @functools.wraps(func)
    def script() -> None:
        func()

    return script
