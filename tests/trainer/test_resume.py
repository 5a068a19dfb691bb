from pathlib import Path

import pytest
import torch

import train
from conftest import ROOT, tiny_overrides
from trainer.build import build_trainer
from utils.config import load_config
from utils.logger import RunLogger, read_metrics

EXTRA = {"trainer.epochs": 2, "scheduler.warmup_epochs": 1, "model.dropout": 0.2}


def weights(path):
    return torch.load(path, weights_only=True)["model"]


@pytest.mark.slow
def test_two_epochs_equal_one_plus_resume_plus_one(demo_data, tmp_path):
    straight = train.main(["--config", str(ROOT / "configs" / "demo.yaml"),
                           *tiny_overrides(demo_data, tmp_path / "a", **EXTRA)])

    # The same run interrupted after its first epoch ...
    overrides = tiny_overrides(demo_data, tmp_path / "b", **EXTRA)
    cfg = load_config(ROOT / "configs" / "demo.yaml", overrides)
    run_dir = tmp_path / "b" / "interrupted"
    run_dir.mkdir(parents=True)
    from utils.seed import seed_everything

    seed_everything(cfg.seed)
    logger = RunLogger(run_dir)
    trainer = build_trainer(cfg, run_dir=run_dir, run_logger=logger)
    trainer.run_epoch()
    logger.close()
    assert trainer.epoch == 1 and not trainer.finished
    torch.manual_seed(12345)  # disturb global RNG: resume must restore it
    # ... then resumed in a new process-like call.
    resumed = train.main(["--resume", str(run_dir)])

    assert resumed["epochs"] == straight["epochs"] == 2
    a, b = weights(f"{straight['run_dir']}/last.pth"), weights(run_dir / "last.pth")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows_a, rows_b = read_metrics(f"{straight['run_dir']}/metrics.csv"), read_metrics(run_dir / "metrics.csv")
    assert [r["epoch"] for r in rows_b] == [1, 2]
    for key in ("train_loss", "val_loss", "val_f1"):
        assert [r[key] for r in rows_a] == [r[key] for r in rows_b]


def test_resume_of_finished_run_does_nothing(demo_data, tmp_path, caplog):
    done = train.main(["--config", str(ROOT / "configs" / "demo.yaml"), *tiny_overrides(demo_data, tmp_path)])
    last = Path(done["run_dir"]) / "last.pth"
    mtime = last.stat().st_mtime_ns
    again = train.main(["--resume", done["run_dir"]])
    assert again["epochs"] == 1
    assert last.stat().st_mtime_ns == mtime
    assert "already finished" in caplog.text
