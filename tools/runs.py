"""Run table: `python -m tools.runs [saved/] [--wide | --csv | --markdown]`, one row per run.

Each row shows the monitored metric's best epoch (the weights in best.pth) and that epoch's val_f1, and `±`:
half the 95 % people-bootstrap interval of the run's model's macro-F1 (so a glance shows which gaps mean
something; `python -m tools.compare A B` judges a pair). Runs are ranked by that val_f1. A K-fold run is one
row (its status, folds done and out-of-fold F1) with its folds below it; a repeated run (`train.py --seeds N`)
one row (mean ± sd over its seeds) with its members below it. A run whose files are damaged is listed as
`unreadable`, the others as usual.
The text table fits 120 columns (`monitored` is the best value of the run's trainer.monitor); `--wide`
adds the monitor's name, the overrides, the head and val_acc."""
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

from utils.cli import as_script, cli_main
from utils.config import read_yaml
from utils.errors import UserError
from utils.run import read_metrics, read_summary
from utils.run_dir import RunDir

COLUMNS = ("name", "timestamp", "backbone", "head", "overrides", "epochs", "monitor", "best", "best_epoch",
           "val_f1", "pm", "val_acc", "wall_time", "status")
NARROW = ("name", "timestamp", "backbone", "epochs", "best_epoch", "val_f1", "pm", "best", "wall_time", "status")
HEADERS = {"best_epoch": "best_ep", "best": "monitored", "wall_time": "wall", "pm": "±"}  # the text table's headers
MAX_CELL = 18  # longest cell of the text table (names, backbones) before it is shortened


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (an id below 1 names none: `os.kill(-1, 0)` would
    ask about every process)."""
    if not isinstance(pid, int) or pid < 1:
        return False
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
    """One table row from a run directory's summary.json and metrics.csv (a K-fold run's from its
    folds_summary.json); a damaged file gives an `unreadable` row instead of stopping the table."""
    run = RunDir(run_dir)
    try:
        if run.is_repeated:
            return repeated_row(run)
        return kfold_row(run) if run.folds_summary.is_file() or run.folds_dir.is_dir() else single_row(run)
    except (UserError, ValueError, KeyError, TypeError, AttributeError, OSError, yaml.YAMLError) as err:
        return {**empty_row(run), "status": f"unreadable ({type(err).__name__})"}


def empty_row(run: RunDir) -> dict[str, Any]:
    return {"name": run.top.path.parent.name, "timestamp": stamp_of(run), "backbone": "", "head": "",
            "overrides": "", "epochs": "", "monitor": "", "best": math.nan, "best_epoch": "", "val_f1": math.nan,
            "pm": math.nan, "val_acc": math.nan, "wall_time": "", "status": "", "parent": parent_of(run),
            "path": str(run.path.resolve()), "refit": False}


def is_child(run: RunDir) -> bool:
    return run.is_fold or run.is_member


def stamp_of(run: RunDir) -> str:
    """The timestamp column: the run's, or `<parent>/fold_k` for a fold, `<parent>/seed_s` for a member."""
    return f"{run.top.path.name}/{run.path.name}" if is_child(run) else run.path.name


def parent_of(run: RunDir) -> Optional[str]:
    return str(run.top.path.resolve()) if is_child(run) else None


def number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def model_of(run: RunDir) -> dict[str, Any]:
    """The run's `model` section as saved ({} without config.yaml; a damaged one is a `ConfigError`)."""
    if not run.config.is_file():
        return {}
    model = read_yaml(run.config).get("model")
    return model if isinstance(model, dict) else {}


def single_row(run: RunDir) -> dict[str, Any]:
    summary = read_summary(run.path)
    if not isinstance(summary, dict):
        raise TypeError("summary.json is not a mapping")
    if "backbone" not in summary:
        model = model_of(run)
        summary = {**summary, "backbone": model.get("backbone", ""), "head": model.get("head", "")}
    best = best_row(summary, read_metrics(run.metrics))
    metric = summary.get("metric", "val_f1")
    return {
        **empty_row(run),
        "name": run.top.path.parent.name if is_child(run) and not run.top.is_member
        else summary.get("name", run.path.parent.name),
        "backbone": summary.get("backbone", ""), "head": summary.get("head", ""),
        "overrides": " ".join(summary.get("overrides", [])),
        "epochs": f"{summary.get('epochs', 0)}/{summary.get('max_epochs', '?')}",
        "monitor": metric, "best": best.get(metric, math.nan), "best_epoch": best.get("epoch", ""),
        "val_f1": best.get("val_f1", math.nan), "pm": number(summary.get("model_f1_pm")),
        "val_acc": best.get("val_acc", math.nan),
        "wall_time": format_seconds(summary.get("wall_time")), "status": run_status(summary),
        **({"parent": str(summary["refit_of"]), "refit": True} if isinstance(summary.get("refit_of"), str) else {}),
    }


def kfold_row(run: RunDir) -> dict[str, Any]:
    """A K-fold run: status and out-of-fold macro-F1 from folds_summary.json; folds done from its folds
    (a run without the summary yet is running or stopped, as its folds say)."""
    import json

    model = model_of(run)
    done = [f for f in run.folds() if f.best.is_file()]
    row = {**empty_row(run), "backbone": model.get("backbone", ""), "head": model.get("head", ""),
           "monitor": "oof_f1"}
    if run.folds_summary.is_file():
        summary = json.loads(run.folds_summary.read_text())
        n_folds = int(summary["n_folds"])
        row.update(name=summary.get("name", row["name"]), best=float(summary["oof_f1"]),
                   val_f1=float(summary["oof_f1"]), pm=number(summary.get("oof_f1_pm")),
                   status=summary.get("status", "finished"))
    else:
        statuses = [run_status(read_summary(f.path)) for f in run.folds()]
        n_folds = len(statuses)
        row["status"] = "running" if "running" in statuses else "stopped"
    wall = [read_summary(f.path).get("wall_time") for f in run.folds()]
    row.update(epochs=f"{len(done)}/{n_folds or '?'} folds",
               wall_time=format_seconds(sum(w for w in wall if isinstance(w, (int, float))) or None))
    return row


def repeated_row(run: RunDir) -> dict[str, Any]:
    """A repeated run (`train.py --seeds N`): mean ± sd of the monitored metric over its seeds, from
    seeds_summary.json (a run without it yet is running or stopped, as its members say)."""
    import json

    model = model_of(run)
    members = run.members()
    row = {**empty_row(run), "backbone": model.get("backbone", ""), "head": model.get("head", ""),
           "epochs": f"{len(members)} seeds"}
    if run.seeds_summary.is_file():
        summary = json.loads(run.seeds_summary.read_text())
        row.update(name=summary.get("name", row["name"]), monitor=summary.get("metric", ""),
                   best=f"{summary['mean']:.4f}±{summary['std']:.4f}", val_f1=float(summary["mean"]),
                   pm=number(summary.get("model_f1_pm")), status=summary.get("status", "finished"),
                   epochs=f"{len(summary['seeds'])} seeds")
    else:
        statuses = [run_row(m.path)["status"] for m in members]
        row["status"] = "running" if "running" in statuses else "stopped"
    return row


def find_runs(root: Path) -> list[Path]:
    """Run directories below `root`: any directory holding config.yaml or summary.json (runs, each fold of a
    K-fold run, each trial of a tuning study)."""
    names = (RunDir(".").summary.name, RunDir(".").config.name)  # at any depth: folds, tuning trials
    return sorted({p.parent for name in names for p in Path(root).rglob(name)})


def run_table(root: Path) -> list[dict[str, Any]]:
    """All runs below `root`, highest val_f1 of the best epoch first (runs without one last); the folds
    of a K-fold run follow it, in fold order."""
    rows = [run_row(d) for d in find_runs(root)]

    def rank(row: dict[str, Any]) -> float:
        return -row["val_f1"] if not math.isnan(row["val_f1"]) else math.inf

    tops = sorted((r for r in rows if r["parent"] is None), key=rank)
    children: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["parent"] is not None:
            children.setdefault(str(Path(row["parent"]).resolve()), []).append(row)

    def with_children(row: dict[str, Any]) -> list[dict[str, Any]]:
        below = children.pop(row["path"], [])
        return [row, *(r for child in below for r in with_children(child))]

    ordered = [r for top in tops for r in with_children(top)]
    return ordered + [r for rest in children.values() for r in rest]  # children whose run directory is gone


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def short(text: str, width: int = MAX_CELL) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render(rows: Sequence[dict[str, Any]], fmt: str = "text") -> str:
    """The table as aligned text (`text`: fits 120 columns; `wide`: every column), CSV or Markdown."""
    columns = NARROW if fmt == "text" else COLUMNS
    cells = [[_cell(r[c]) for c in columns] for r in rows]
    if fmt == "text":
        cells = [[short(c) for c in row] for row in cells]
        for row, r in zip(cells, rows):
            if r["monitor"] not in ("val_f1", "oof_f1", "") and row[columns.index("best")]:  # say which metric
                row[columns.index("best")] += f" {r['monitor']}"
            if r["parent"] is not None:  # a fold or a seed, under its run (a member's folds under it)
                depth = 2 if RunDir(r["parent"]).is_member else 1
                row[0], row[1] = "  " * depth + "└", r["timestamp"].split("/")[-1]
                if r["refit"]:  # the final fit on everyone, under the run whose validation chose its epochs
                    row[0], row[1] = "  └ refit", r["timestamp"]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(cells)
        return buf.getvalue()
    if fmt == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        return "\n".join(lines) + "\n"
    if fmt == "text":
        columns = tuple(HEADERS.get(c, c) for c in columns)
        cells = [[c.split(" (")[0] if c.startswith("unreadable") else c for c in row] for row in cells]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines) + "\n"


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", nargs="?", type=Path, default=Path("saved"))
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--wide", action="store_true", help="every column (overrides, head, val_acc)")
    group.add_argument("--csv", action="store_true")
    group.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    form = next((name for name, wanted in (("csv", args.csv), ("markdown", args.markdown), ("wide", args.wide))
                 if wanted), "text")
    text = render(run_table(args.root), form)
    print(text, end="")
    return text


script = as_script(main)

if __name__ == "__main__":
    main()
