"""GPU choices with torch.cuda patched: AMP dtype per compute capability, the arch check, no silent CPU."""
import logging

import pytest
import torch

from utils import device as dev
from utils.errors import ConfigError, UserError

CUDA = torch.device("cuda", 0)


@pytest.fixture()
def gpu(monkeypatch):
    """A fake GPU of a given compute capability and a torch build for a given arch list."""
    def make(capability, arch_list=("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120")):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: capability)
        monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: list(arch_list))
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Tesla V100-SXM2-32GB")
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what a V100 answers
    return make


def test_auto_gives_fp16_on_volta_and_never_emulated_bf16(gpu, caplog):
    gpu((7, 0))
    assert dev.amp_dtype("auto", CUDA) is torch.float16
    with caplog.at_level(logging.WARNING):
        assert dev.amp_dtype("bf16", CUDA) is torch.float16
    assert "no native bf16" in caplog.text


def test_auto_gives_bf16_on_ampere_and_none_on_cpu(gpu):
    gpu((8, 0))
    assert dev.amp_dtype("auto", CUDA) is torch.bfloat16
    assert dev.amp_dtype("fp16", CUDA) is torch.float16
    assert dev.amp_dtype("none", CUDA) is None
    assert dev.amp_dtype("auto", CUDA, training=True) is torch.bfloat16  # a GPU's training and validation agree


@pytest.mark.parametrize("native", [True, False])
def test_the_cpu_trains_in_bf16_only_where_it_is_native_and_always_predicts_in_fp32(monkeypatch, caplog, native):
    monkeypatch.setattr(dev, "cpu_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    expected = torch.bfloat16 if native else None
    assert dev.amp_dtype("auto", cpu, training=True) is expected
    assert dev.amp_dtype("auto", cpu) is None and dev.amp_dtype("none", cpu, training=True) is None
    with caplog.at_level(logging.WARNING):
        assert dev.amp_dtype("bf16", cpu, training=True) is expected
        assert dev.amp_dtype("fp16", cpu, training=True) is expected
        assert dev.amp_dtype("bf16", cpu) is None
    assert ("no native bf16" in caplog.text) == (not native)
    assert "trainer.amp=fp16 ignored on the CPU" in caplog.text and "predicting in fp32" in caplog.text


def test_a_cpu_trainer_autocasts_its_step_and_not_its_validation(monkeypatch):
    from helpers import toy_trainer

    monkeypatch.setattr(dev, "cpu_native_bf16", lambda: True)
    seen = []
    trainer = toy_trainer(scores=None, amp="auto")
    forward = trainer.model.forward
    trainer.model.forward = lambda x: seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu")
                                                  else None) or forward(x)
    trainer.net = trainer.model
    images, targets = next(iter(trainer.train_loader))[:2]
    trainer.train_step(images, targets, 0)
    trainer.evaluate(trainer.train_loader)
    assert seen[0] is torch.bfloat16 and set(seen[1:]) == {None}
    assert trainer.summary()["amp"] == "bf16" and not trainer.scaler.is_enabled()


def test_arch_check_refuses_volta_on_a_cuda13_build_in_one_line(gpu):
    gpu((7, 0))
    with pytest.raises(UserError) as err:
        dev.check_cuda_arch(CUDA)
    text = str(err.value)
    assert "\n" not in text and "V100" in text and "7.0" in text and torch.__version__ in text
    assert "requirements-v100.txt" in text


def test_arch_check_passes_covered_gpus_and_ptx(gpu):
    gpu((8, 0))
    dev.check_cuda_arch(CUDA)
    gpu((8, 9), arch_list=("sm_80", "compute_80"))  # no sm_89 kernels, but PTX the driver can compile
    dev.check_cuda_arch(CUDA)
    dev.check_cuda_arch(torch.device("cpu"))


def test_no_silent_cpu_when_an_nvidia_gpu_is_unusable(monkeypatch, tmp_path, caplog):
    driver = tmp_path / "version"
    driver.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.82.01  Thu Oct 28 2021\n")
    monkeypatch.setattr(dev, "DRIVER_FILE", driver)
    monkeypatch.setattr(dev.nvidia_driver_version, "__defaults__", (driver,))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING):
        assert dev.resolve_device("auto").type == "cpu"
    assert "470.82.01" in caplog.text and torch.__version__ in caplog.text
    with pytest.raises(ConfigError, match="470.82.01 too old"):
        dev.resolve_device("cuda")


def test_the_weight_averages_batchnorm_pass_trains_in_the_step_precision_and_is_validated_in_fp32(monkeypatch):
    from torch import nn

    from helpers import toy_trainer
    from model.classifier import MaskClassifier
    from utils.config import SwaConfig

    monkeypatch.setattr(dev, "cpu_native_bf16", lambda: True)
    model = MaskClassifier(nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.BatchNorm1d(6)), nn.Linear(6, 18))
    trainer = toy_trainer(scores=[0.5, 0.6], model=model, amp="auto", epochs=2,
                          swa=SwaConfig(epochs=1, bn_update=True))
    trainer.run_epoch()
    trainer.run_epoch()
    net = trainer.swa.swa.module
    seen = []
    forward = net.forward
    net.forward = lambda x: seen.append((net.training, torch.get_autocast_dtype("cpu")
                                         if torch.is_autocast_enabled("cpu") else None)) or forward(x)
    trainer.finish_swa()
    assert {dtype for training, dtype in seen if training} == {torch.bfloat16}  # the BatchNorm pass
    assert {dtype for training, dtype in seen if not training} == {None}  # its validation, as inference
