"""Old command names that keep working for one release: they say their new name, then run it."""
from __future__ import annotations

import runpy
import sys


def forward(*, old: str, new: str) -> None:
    """Run module `new` as `__main__` after one line on stderr saying `python -m old` is deprecated."""
    print(f"note: `python -m {old}` is deprecated and will be removed in the next release; "
          f"use `python -m {new}`", file=sys.stderr)
    runpy.run_module(new, run_name="__main__", alter_sys=True)
