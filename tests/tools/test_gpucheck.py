"""The GPU acceptance run: one line and exit 0 without CUDA; its comparisons, exercised on the CPU."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import ROOT, scaled
from tools.gpucheck import agreement, precision_check


@pytest.mark.slow  # a subprocess or a worker pool: make test only
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the full check would run")
def test_without_cuda_one_line_and_exit_0():
    proc = subprocess.run([sys.executable, "-m", "tools.gpucheck"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0
    assert len(proc.stdout.strip().splitlines()) == 1 and "no CUDA GPU" in proc.stdout


def test_agreement_measures_what_it_says():
    ref = np.array([[0.7, 0.3], [0.4, 0.6], [0.5, 0.5], [0.504, 0.496], [0.9, 0.1]])
    other = np.array([[0.6, 0.4], [0.7, 0.3], [0.5, 0.5], [0.49, 0.51], [0.85, 0.15]])
    # rows 2 (gap 0.2) and 4 (gap 0.008) flipped: the larger gap is reported
    assert agreement(ref, other) == pytest.approx({"max_abs_diff": 0.3, "argmax_agreement": 3 / 5,
                                                   "flip_max_gap": 0.2})
    assert agreement(ref[2:], other[2:])["flip_max_gap"] == pytest.approx(0.008)
    assert agreement(ref, ref)["flip_max_gap"] == 0.0


def test_precision_check_on_cpu_autocast(make_trainer):
    made = []

    def make(amp):
        made.append(amp)
        return make_trainer(**{"trainer.amp": amp})

    results = precision_check(make, {"bf16": torch.bfloat16}, steps=2)
    assert made == ["none", "bf16"]
    assert results["fp32"]["losses_finite"] and results["bf16"]["losses_finite"]
    assert 0 < results["bf16"]["max_abs_diff"] < 0.2 and results["bf16"]["argmax_agreement"] >= 0.8


@pytest.mark.slow
def test_the_whole_check_runs_on_the_cpu(tmp_path):
    """The GPU acceptance run exercised end to end (CPU autocast, gloo DDP, save -> resume)."""
    small = ["model.backbone=mobilenetv3_small_050", "augment.image_size=[64,48]", "data.num_workers=0"]
    proc = subprocess.run([sys.executable, "-m", "tools.gpucheck", "--cpu-smoke", "--steps", "2", "--people", "12",
                           *small], cwd=ROOT, capture_output=True, text=True, timeout=scaled(900))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "fp32  losses finite: True" in out and "bf16  losses finite: True" in out
    assert "full loop" in out and "input pipeline" in out
    assert "one epoch, section by section: train " in out and "(loader wait " in out and "checkpoint " in out
    assert "DDP NCCL 1 process: rc 0; save -> resume: rc 0 -> 0" in out
    for part in ("synthetic data", "precision", "full loop vs bare loop", "epoch breakdown",
                 "input pipeline vs GPU step", "DDP, 1 process", "save -> resume"):
        assert f"gpucheck: {part} done in " in out
    assert "  time: " in out and "s in all (synthetic data " in out


@pytest.mark.slow
def test_quick_check_runs_only_its_four_parts(tmp_path):
    small = ["model.backbone=mobilenetv3_small_050", "augment.image_size=[64,48]", "data.num_workers=0"]
    proc = subprocess.run([sys.executable, "-m", "tools.gpucheck", "--cpu-smoke", "--quick", "--steps", "2",
                           "--people", "12", *small], cwd=ROOT, capture_output=True, text=True, timeout=scaled(900))
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = [line.split(" done in ")[0].removeprefix("gpucheck: ") for line in proc.stdout.splitlines()
            if " done in " in line]
    assert done == ["synthetic data", "precision", "full loop vs bare loop", "epoch breakdown",
                    "input pipeline vs GPU step"]
    assert "DDP" not in proc.stdout and "argmax agreement" in proc.stdout


@pytest.mark.slow  # a subprocess or a worker pool: make test only
def test_parts_are_bounded():
    proc = subprocess.run([sys.executable, "-m", "tools.gpucheck", "--steps", "5000"], cwd=ROOT,
                          capture_output=True, text=True, timeout=scaled(120))
    assert proc.returncode == 2 and "--steps must be 1..100" in proc.stderr
