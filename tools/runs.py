"""Run table: `python -m tools.runs [saved/] [--csv | --markdown]`, one row per run.

Each row shows the monitored metric's best epoch (the weights in best.pth) and that epoch's val_f1;
runs are ranked by that val_f1."""
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

from utils.errors import as_script, cli_main
from utils.logger import read_metrics, read_summary
from utils.run_dir import RunDir

COLUMNS = ("name", "timestamp", "backbone", "head", "overrides", "epochs", "monitor", "best", "best_epoch",
           "val_f1", "val_acc", "wall_time", "status")


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


def best_row(summary: dict[str, Any], rows: list[dict[str, float]]) -> dict[str, float]:
    """The metrics row of the monitored metric's best epoch (the weights in best.pth); for runs that
    never recorded one, the row of the highest val_f1."""
    epoch = summary.get("best_epoch")
    if isinstance(epoch, int) and epoch > 0:
        return next((r for r in rows if r["epoch"] == epoch), {})
    scored = [r for r in rows if "val_f1" in r]
    return max(scored, key=lambda r: r["val_f1"]) if scored else {}


def run_row(run_dir: Path) -> dict[str, Any]:
    """One table row from a run directory's summary.json and metrics.csv."""
    run = RunDir(run_dir)
    summary = read_summary(run.path)
    if "backbone" not in summary and run.config.is_file():
        model = (yaml.safe_load(run.config.read_text()) or {}).get("model", {})
        summary = {**summary, "backbone": model.get("backbone", ""), "head": model.get("head", "")}
    best = best_row(summary, read_metrics(run.metrics))
    metric = summary.get("metric", "val_f1")
    return {
        "name": summary.get("name", run.path.parent.name), "timestamp": run.path.name,
        "backbone": summary.get("backbone", ""), "head": summary.get("head", ""),
        "overrides": " ".join(summary.get("overrides", [])),
        "epochs": f"{summary.get('epochs', 0)}/{summary.get('max_epochs', '?')}",
        "monitor": metric, "best": best.get(metric, math.nan), "best_epoch": best.get("epoch", ""),
        "val_f1": best.get("val_f1", math.nan), "val_acc": best.get("val_acc", math.nan),
        "wall_time": format_seconds(summary.get("wall_time")), "status": run_status(summary),
    }


def find_runs(root: Path) -> list[Path]:
    """Run directories below `root`: any directory holding config.yaml or summary.json (runs, each fold of a
    K-fold run, each trial of a tuning study)."""
    names = (RunDir(".").summary.name, RunDir(".").config.name)  # at any depth: folds, tuning trials
    return sorted({p.parent for name in names for p in Path(root).rglob(name)})


def run_table(root: Path) -> list[dict[str, Any]]:
    """All runs below `root`, highest val_f1 of the best epoch first (runs without one last)."""
    rows = [run_row(d) for d in find_runs(root)]
    return sorted(rows, key=lambda r: -r["val_f1"] if not math.isnan(r["val_f1"]) else math.inf)


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
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines) + "\n"


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", nargs="?", type=Path, default=Path("saved"))
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--csv", action="store_true")
    group.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    form = next((name for name, wanted in (("csv", args.csv), ("markdown", args.markdown)) if wanted), "text")
    text = render(run_table(args.root), form)
    print(text, end="")
    return text


script = as_script(main)

if __name__ == "__main__":
    main()
