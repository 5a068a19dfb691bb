import subprocess
import sys

import pandas as pd
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import ROOT, tiny_overrides
from utils.logger import read_metrics


def run(*args):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_train_then_infer_from_the_command_line(demo_data, tmp_path):
    saved = tmp_path / "saved"
    result = run("train.py", "--config", "configs/demo.yaml",
                 *tiny_overrides(demo_data, saved, **{"trainer.epochs": 2, "model.head": "shallow"}))
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = list((saved / "tiny").iterdir())
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.yaml", "best.pth", "last.pth", "metrics.csv", "train.log"} <= names
    assert any(n.startswith("events.out.tfevents") for n in names)

    state = torch.load(run_dir / "best.pth", weights_only=True)
    assert state["config"]["model"]["head"] == "shallow"
    assert state["config"]["augment"]["image_size"] == [64, 48]  # resolved, not null
    assert len(state["class_names"]) == 18
    assert yaml.safe_load((run_dir / "config.yaml").read_text()) == state["config"]

    rows = read_metrics(run_dir / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"train_loss", "val_loss", "val_acc", "val_f1", "lr"} <= set(rows[0])

    events = EventAccumulator(str(run_dir))
    events.Reload()
    assert {"loss/train", "loss/val", "accuracy/val", "f1/val", "lr"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("f1/val")] == [1, 2]

    result = run("inference.py", "--ckpt", str(run_dir), "--tta")
    assert result.returncode == 0, result.stderr[-2000:]
    sub = pd.read_csv(run_dir / "submission.csv", dtype={"ImageID": str})
    info = pd.read_csv(demo_data / "eval" / "info.csv", dtype={"ImageID": str})
    assert sub["ImageID"].tolist() == info["ImageID"].tolist()

    scored = run("-m", "utils.score", str(run_dir / "submission.csv"), str(demo_data / "eval_truth.csv"))
    assert scored.returncode == 0 and "macro-F1" in scored.stdout


def test_cli_config_error_is_one_line_exit_2(tmp_path):
    result = run("train.py", "--config", "configs/demo.yaml", f"save_dir={tmp_path}", "model.head=deep")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "model.head" in lines[0] and "deep" in lines[0]
    assert not any(tmp_path.iterdir())


def test_run_directories_never_overwrite(demo_data, tmp_path):
    import train

    a = train.main(["--config", str(ROOT / "configs/demo.yaml"), *tiny_overrides(demo_data, tmp_path)])
    b = train.main(["--config", str(ROOT / "configs/demo.yaml"), *tiny_overrides(demo_data, tmp_path)])
    assert a["run_dir"] != b["run_dir"]
