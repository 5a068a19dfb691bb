"""Every command is installed as a console script; the old `python -m` names still run, with a note."""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from helpers import ROOT, scaled

SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
DEPRECATED = {"utils.runs": "tools.runs", "utils.score": "tools.score", "utils.benchmark": "tools.benchmark",
              "utils.gpucheck": "tools.gpucheck", "data_loader.report": "tools.data_report",
              "data_loader.synthetic": "tools.synthetic", "data_loader.faces": "tools.faces"}


def test_every_runnable_module_has_a_console_script():
    runnable = {f"{p.parent.name}.{p.stem}" for p in (ROOT / "tools").glob("*.py") if "__main__" in p.read_text()}
    runnable |= {p.stem for p in ROOT.glob("*.py")}
    targets = {target.split(":")[0] for target in SCRIPTS.values()}
    assert runnable - {"__init__"} <= targets
    for target in SCRIPTS.values():
        module, attr = target.split(":")
        assert callable(getattr(importlib.import_module(module), attr)), target


@pytest.mark.slow  # a subprocess or a worker pool: make test only
def test_a_console_script_exits_0_although_main_returns_a_value(tmp_path):
    script = Path(sys.executable).with_name("mask-runs")
    if not script.exists():
        pytest.skip("project not installed in this environment (make venv installs it)")
    done = subprocess.run([str(script), str(tmp_path)], capture_output=True, text=True, timeout=scaled(120))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("name")


@pytest.mark.parametrize("old", [pytest.param(old, marks=[] if old == "utils.score" else [pytest.mark.slow])
                                 for old in sorted(DEPRECATED)])
def test_old_command_names_say_the_new_one_and_run_it(old):
    done = subprocess.run([sys.executable, "-m", old, "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=scaled(120))
    assert done.returncode == 0, done.stderr
    note = [line for line in done.stderr.splitlines() if "deprecated" in line]
    assert note == [f"note: `python -m {old}` is deprecated and will be removed in the next release; "
                    f"use `python -m {DEPRECATED[old]}`"]
    assert "usage:" in done.stdout
