"""The real training path on a CUDA GPU: AMP dtypes, channels_last, torch.compile, weight averaging, a 1-process
NCCL run, save and resume. Skipped without a GPU; run with `pytest -m gpu` where one exists."""
import subprocess
import sys

import pytest
import torch

from helpers import ROOT, scaled, tiny_overrides
from utils.device import NATIVE_BF16

pytestmark = pytest.mark.gpu


def gpu_overrides(demo_data, tmp_path, **extra):
    return tiny_overrides(demo_data, tmp_path, **{"trainer.device": "cuda", **extra})


@pytest.mark.parametrize("amp", ["fp16", "bf16", "none"])
def test_amp_modes_train_with_finite_losses(make_trainer, amp):
    if amp == "bf16" and torch.cuda.get_device_capability() < NATIVE_BF16:
        pytest.skip("no native bf16 on this GPU")
    trainer = make_trainer(**{"trainer.device": "cuda", "trainer.amp": amp})
    metrics = trainer.run_epoch()
    assert torch.isfinite(torch.tensor(metrics["train_loss"])) and trainer.device.type == "cuda"
    expected = {"fp16": torch.float16, "bf16": torch.bfloat16, "none": None}[amp]
    assert trainer.amp_dtype == expected and trainer.scaler.is_enabled() == (amp == "fp16")


@pytest.mark.parametrize("compile_model", [False, True])
def test_channels_last_and_compile_train(make_trainer, compile_model):
    trainer = make_trainer(**{"trainer.device": "cuda", "trainer.channels_last": "true",
                              "trainer.compile": str(compile_model).lower()})
    metrics = trainer.run_epoch()
    assert torch.isfinite(torch.tensor(metrics["train_loss"]))
    conv = next(p for p in trainer.model.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)


def test_weight_averaging_recomputes_batchnorm_on_the_gpu(make_trainer, tmp_path):
    """`update_bn` moves the training batches to the averaged model's device (it is not told it on a CPU)."""
    trainer = make_trainer(**{"trainer.device": "cuda", "trainer.epochs": 1, "trainer.swa": "{epochs: 1}"})
    trainer.fit()
    bn = next(m for m in trainer.swa.module.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert bn.running_mean.device.type == "cuda" and trainer.swa.count == 1
    assert torch.isfinite(torch.tensor(trainer.swa_metrics["swa_val_loss"])) and (tmp_path / "swa.pth").is_file()


def test_one_process_nccl_run_then_resume(demo_data, tmp_path):
    args = ["train.py", "--config", "configs/demo.yaml", *gpu_overrides(demo_data, tmp_path)]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=scaled(900))
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = list((tmp_path / "tiny").iterdir())
    assert "device cuda" in (run_dir / "train.log").read_text()
    resumed = subprocess.run([sys.executable, "train.py", "--resume", str(run_dir), "trainer.epochs=2"], cwd=ROOT,
                             capture_output=True, text=True, timeout=scaled(900))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in (run_dir / "train.log").read_text()
