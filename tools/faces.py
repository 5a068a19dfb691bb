"""Find one face per photo, once: `python -m tools.faces --data DIR [--detector NAME]`.

Writes `DIR/faces.csv` through `data_loader.faces` (reused while the files and the detector are
unchanged) and prints the share of photos with a face.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from data_loader.faces import DETECTORS, FACES_FILE, create_detector, update_face_table
from utils.cli import as_script, cli_main


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(prog="python -m tools.faces", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, action="append",
                        help="a directory of images (searched recursively); repeat for several")
    parser.add_argument("--detector", default="mtcnn", help=f"one of {', '.join(DETECTORS)} (default mtcnn)")
    parser.add_argument("--workers", type=int, help="detection processes (default: one per core, at most 8)")
    parser.add_argument("--min-score", type=float, default=0.5, help="score counted as a face in the summary")
    args = parser.parse_args(argv)
    create_detector(args.detector)
    tables = []
    for data_dir in args.data:
        table = update_face_table(data_dir, args.detector, args.workers)
        found = int((table["score"] >= args.min_score).sum())
        print(f"{data_dir / FACES_FILE}: {len(table)} images, a face (score >= {args.min_score}) in {found} "
              f"({found / len(table):.1%})")
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


script = as_script(main)

if __name__ == "__main__":
    main()
