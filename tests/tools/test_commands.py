"""Every command is installed as a console script."""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from helpers import ROOT, scaled

SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


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
