"""Run table: `python -m utils.runs [saved/] [--csv | --markdown]`, one row per run, best F1 first."""
from __future__ import annotations

import argparse
import csv
import io
import math
import os
import socket
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from utils.logger import read_metrics, read_summary

COLUMNS = ("name", "timestamp", "backbone", "head", "overrides", "epochs", "best_val_f1", "best_epoch",
           "val_acc", "wall_time", "status")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_status(summary: dict[str, Any]) -> str:
    """finished / stopped early / interrupted / crashed / running. A run still marked running whose
    process is gone (on this host) crashed; so did a run that never wrote a summary."""
    status = summary.get("status")
    if status is None:
        return "crashed"
    local = summary.get("host") == socket.gethostname()
    if status == "running" and local and not pid_alive(summary.get("pid", -1)):
        return "crashed"
    return status


def format_seconds(seconds: Optional[float]) -> str:
    if seconds is None:
        return ""
    minutes, sec = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{sec:02d}"


def run_row(run_dir: Path) -> dict[str, Any]:
    """One table row from a run directory's summary.json and metrics.csv."""
    summary = read_summary(run_dir)
    if "backbone" not in summary and (run_dir / "config.yaml").is_file():
        model = (yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get("model", {})
        summary = {**summary, "backbone": model.get("backbone", ""), "head": model.get("head", "")}
    rows = [r for r in read_metrics(run_dir / "metrics.csv") if "val_f1" in r]
    best = max(rows, key=lambda r: r["val_f1"]) if rows else {}
    return {
        "name": summary.get("name", run_dir.parent.name), "timestamp": run_dir.name,
        "backbone": summary.get("backbone", ""), "head": summary.get("head", ""),
        "overrides": " ".join(summary.get("overrides", [])),
        "epochs": f"{summary.get('epochs', 0)}/{summary.get('max_epochs', '?')}",
        "best_val_f1": best.get("val_f1", math.nan), "best_epoch": best.get("epoch", ""),
        "val_acc": best.get("val_acc", math.nan), "wall_time": format_seconds(summary.get("wall_time")),
        "status": run_status(summary),
    }


def find_runs(root: Path) -> list[Path]:
    """Run directories below `root` (`<name>/<timestamp>/` holding config.yaml or summary.json)."""
    patterns = ("*/*/summary.json", "*/*/config.yaml")
    return sorted({p.parent for pattern in patterns for p in Path(root).glob(pattern)})


def run_table(root: Path) -> list[dict[str, Any]]:
    """All runs below `root`, best validation F1 first (runs without one last)."""
    rows = [run_row(d) for d in find_runs(root)]
    return sorted(rows, key=lambda r: -r["best_val_f1"] if not math.isnan(r["best_val_f1"]) else math.inf)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def render(rows: Sequence[dict[str, Any]], fmt: str = "text") -> str:
    """The table as aligned text, CSV or Markdown."""
    cells = [[_cell(r[c]) for c in COLUMNS] for r in rows]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(cells)
        return buf.getvalue()
    if fmt == "markdown":
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        return "\n".join(lines) + "\n"
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", nargs="?", type=Path, default=Path("saved"))
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--csv", action="store_true")
    group.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    text = render(run_table(args.root), "csv" if args.csv else "markdown" if args.markdown else "text")
    print(text, end="")
    return text


if __name__ == "__main__":
    main()
