"""The GPU acceptance run: one line and exit 0 without CUDA; its comparisons, exercised on the CPU."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT
from trainer.gpucheck import agreement, precision_check


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the full check would run")
def test_without_cuda_one_line_and_exit_0():
    proc = subprocess.run([sys.executable, "-m", "utils.gpucheck"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0
    assert len(proc.stdout.strip().splitlines()) == 1 and "no CUDA GPU" in proc.stdout


def test_agreement_measures_what_it_says():
    ref = np.array([[0.7, 0.3], [0.4, 0.6], [0.5, 0.5]])
    other = np.array([[0.6, 0.4], [0.7, 0.3], [0.5, 0.5]])
    assert agreement(ref, other) == pytest.approx({"max_abs_diff": 0.3, "argmax_agreement": 2 / 3})


def test_precision_check_on_cpu_autocast(make_trainer):
    made = []

    def make(amp):
        made.append(amp)
        return make_trainer(**{"trainer.amp": amp})

    results = precision_check(make, {"bf16": torch.bfloat16}, steps=2)
    assert made == ["none", "bf16"]
    assert results["fp32"]["losses_finite"] and results["bf16"]["losses_finite"]
    assert 0 < results["bf16"]["max_abs_diff"] < 0.2 and results["bf16"]["argmax_agreement"] >= 0.8
