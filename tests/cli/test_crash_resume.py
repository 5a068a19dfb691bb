"""Kill -9 and SIGTERM in the middle of a run, then --resume: same result as no interruption."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from helpers import ROOT, scaled, tiny_overrides
from utils.run import read_metrics, read_summary

pytestmark = pytest.mark.slow  # subprocess/DDP/end-to-end runs: `make test` only


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
EXTRA = {"trainer.epochs": 3, "trainer.deterministic": "true", "model.dropout": 0.2}


def start(args):
    return subprocess.Popen([sys.executable, "train.py", *args], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def only_run_dir(save_dir):
    (run_dir,) = list((save_dir / "tiny").iterdir())
    return run_dir


def wait_for_first_epoch(proc, save_dir, timeout=scaled(300)):
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = list((save_dir / "tiny").glob("*/last.pth")) if (save_dir / "tiny").exists() else []
        if runs and read_summary(runs[0].parent).get("epochs", 0) >= 1:
            return runs[0].parent
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise TimeoutError("first epoch never finished")


def final_state(run_dir):
    return torch.load(run_dir / "last.pth", weights_only=True), read_metrics(run_dir / "metrics.csv")


@pytest.fixture(scope="module")
def straight(demo_data, tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("straight")
    result = subprocess.run([sys.executable, "train.py", "--config", "configs/demo.yaml",
                             *tiny_overrides(demo_data, save_dir, **EXTRA)],
                            cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=scaled(600))
    assert result.returncode == 0, result.stderr[-2000:]
    return final_state(only_run_dir(save_dir))


def assert_same_run(a, b):
    (state_a, rows_a), (state_b, rows_b) = a, b
    assert state_a["epoch"] == state_b["epoch"] == 3
    for key, value in state_a["model"].items():
        assert torch.equal(value, state_b["model"][key]), key
    assert [r["epoch"] for r in rows_b] == [1, 2, 3]
    for key in ("train_loss", "val_loss", "val_f1", "lr_head", "lr_backbone"):
        assert [r[key] for r in rows_a] == [r[key] for r in rows_b], key


def resume(run_dir):
    resumed = subprocess.run([sys.executable, "train.py", "--resume", str(run_dir)], cwd=ROOT, env=ENV,
                             capture_output=True, text=True, timeout=scaled(600))
    assert resumed.returncode == 0, resumed.stderr[-2000:]


def test_kill_9_mid_run_then_resume(demo_data, tmp_path, straight):
    proc = start(["--config", "configs/demo.yaml", *tiny_overrides(demo_data, tmp_path, **EXTRA)])
    run_dir = wait_for_first_epoch(proc, tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=scaled(120))
    assert proc.returncode == -signal.SIGKILL
    assert read_summary(run_dir)["status"] == "running"  # what a crashed run looks like
    resume(run_dir)
    assert_same_run(straight, final_state(run_dir))
    assert read_summary(run_dir)["status"] == "finished"


def test_sigterm_stops_cleanly_then_resume(demo_data, tmp_path, straight):
    save_dir = tmp_path
    proc = start(["--config", "configs/demo.yaml", *tiny_overrides(demo_data, save_dir, **EXTRA)])
    run_dir = wait_for_first_epoch(proc, save_dir)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=scaled(120))
    if proc.returncode == 0:  # the run finished before the signal landed: nothing to test
        pytest.skip("run ended before SIGTERM")
    assert proc.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in out + err and "SIGTERM received" in out + err
    assert read_summary(run_dir)["status"] == "interrupted"
    torch.load(run_dir / "last.pth", weights_only=True)  # a complete, loadable checkpoint
    resume(run_dir)
    assert_same_run(straight, final_state(run_dir))
