import pytest

from helpers import ROOT, tiny_overrides
from tools.benchmark import run_benchmark
from utils.config import load_config


@pytest.mark.slow  # a subprocess or a worker pool: make test only
def test_benchmark_reports_every_figure(demo_data, tmp_path):
    config = load_config(ROOT / "configs/demo.yaml", tiny_overrides(demo_data, tmp_path))
    results = run_benchmark(config, steps=2)
    for key in ("a_pipeline_decode_full", "a_pipeline_decode", "a_pipeline_cached", "b_train_step",
                "c_full_loop", "d_reference", "peak_rss_mb"):
        assert results[key] > 0, key
    assert results["c_over_d"] == results["c_full_loop"] / results["d_reference"]
    assert results["cache_speedup"] == results["a_pipeline_cached"] / results["a_pipeline_decode"]
    assert results["e_train_s"] >= results["e_loader_wait_s"] >= 0 and results["e_checkpoint_s"] > 0
    assert "e_gpu_util_percent" not in results  # no GPU, no figure


@pytest.mark.slow  # two real epochs
def test_the_epoch_breakdown_times_a_real_epoch_with_its_checkpoints(demo_data, tmp_path):
    from tools.benchmark import describe_breakdown, epoch_breakdown

    config = load_config(ROOT / "configs/demo.yaml", tiny_overrides(demo_data, tmp_path))
    breakdown = epoch_breakdown(config)
    seconds, shares = breakdown["seconds"], breakdown["shares"]
    assert set(seconds) == {"train", "loader_wait", "val", "log", "checkpoint"}
    assert seconds["checkpoint"] > 0 and seconds["val"] > 0 and 0 <= seconds["loader_wait"] <= seconds["train"]
    assert sum(v for k, v in shares.items() if k != "loader_wait") == pytest.approx(1.0)
    assert breakdown["gpu_util_percent"] is None and breakdown["images"] > 0
    text = describe_breakdown(breakdown)
    assert text.startswith("train ") and "(loader wait " in text and "checkpoint " in text and "GPU" not in text
    assert not list(tmp_path.glob("**/*.pth"))  # the checkpoints went to a temporary run directory, now gone


def test_the_breakdown_reads_as_one_line_with_the_wait_inside_training():
    from tools.benchmark import describe_breakdown

    breakdown = {"seconds": {"train": 8.0, "loader_wait": 2.0, "val": 1.5, "log": 0.1, "checkpoint": 0.4},
                 "shares": {"train": 0.8, "loader_wait": 0.2, "val": 0.15, "log": 0.01, "checkpoint": 0.04},
                 "gpu_util_percent": 61.4}
    assert describe_breakdown(breakdown) == ("train 8.0 s 80% (loader wait 2.0 s 20%), val 1.5 s 15%, log 0.1 s 1%, "
                                             "checkpoint 0.4 s 4%; GPU busy 61 %")


def test_the_utilisation_sampler_averages_what_nvml_reports(monkeypatch):
    import time

    import torch

    from tools.benchmark import UtilisationSampler

    readings = iter([30.0, 50.0, 70.0] + [70.0] * 1000)
    monkeypatch.setattr(torch.cuda, "utilization", lambda device=None: next(readings))
    with UtilisationSampler(torch.device("cuda"), interval=0.01) as sampler:
        time.sleep(0.5)
    assert len(sampler.samples) >= 3 and sampler.samples[:3] == [30.0, 50.0, 70.0]
    assert sampler.mean == pytest.approx(sum(sampler.samples) / len(sampler.samples))

    def no_nvml(device=None):
        raise ModuleNotFoundError("pynvml")
    monkeypatch.setattr(torch.cuda, "utilization", no_nvml)
    with UtilisationSampler(torch.device("cuda"), interval=0.01) as sampler:
        time.sleep(0.05)
    assert sampler.mean is None
    with UtilisationSampler(torch.device("cpu"), interval=0.01) as sampler:
        time.sleep(0.05)
    assert sampler.mean is None
