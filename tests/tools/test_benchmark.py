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
