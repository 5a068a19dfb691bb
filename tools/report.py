"""Draw a run's picture: `python -m tools.report RUN [RUN ...]` writes RUN/report.png.

Every run draws it at its end; this draws it again, or for runs of an earlier release. A K-fold or repeated
run shows its folds or seeds side by side. 1600 px wide, readable in a chat window."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

from utils.cli import as_script, cli_main
from utils.errors import UserError


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories")
    args = parser.parse_args(argv)
    from utils.run_report import write_report

    for run in args.runs:
        if not run.is_dir():
            raise UserError(f"{run}: no such run directory")
    written = [write_report(run) for run in args.runs]
    for path in written:
        print(path)
    return written


script = as_script(main)

if __name__ == "__main__":
    main()
