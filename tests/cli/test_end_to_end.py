import json
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers import ROOT, scaled, tiny_overrides
from utils.run import read_metrics

pytestmark = pytest.mark.slow  # subprocess/DDP/end-to-end runs: `make test` only


def run(*args):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=scaled(600))


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
    assert {"train_loss", "val_loss", "val_acc", "val_f1", "lr_head", "lr_backbone"} <= set(rows[0])

    events = EventAccumulator(str(run_dir))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"loss/train", "loss/val", "top1_accuracy/val", "f1/val", "lr/head", "lr/backbone"} <= scalars
    assert {"f1/val_mask", "f1/val_gender", "f1/val_age", "per_class_f1_val/04 wear female 30-59"} <= scalars
    assert sum(tag.startswith("per_class_f1_val/") for tag in scalars) == 18
    assert [e.step for e in events.Scalars("f1/val")] == [1, 2]
    best_epoch = max(rows, key=lambda r: r["val_f1"])["epoch"]
    assert {"train/augmented_samples", "val/confusion_matrix", "val/confusion_mask", "val/confusion_gender",
            "val/confusion_age"} <= set(events.Tags()["images"])
    assert events.Images("val/confusion_matrix")[-1].step == best_epoch
    if rows[best_epoch - 1]["val_acc"] < 1:
        assert "val/confident_mistakes" in events.Tags()["images"]
    with pytest.raises(KeyError):  # no hparams summary in the run itself: no experiment summary anywhere
        events.PluginTagToContent("hparams")
    session = EventAccumulator(str(run_dir / "hparams"))
    session.Reload()
    assert "_hparams_/session_start_info" in session.PluginTagToContent("hparams")
    assert set(session.Tags()["scalars"]) == {"hparams/val_f1"}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["best_epoch"] == best_epoch

    result = run("inference.py", "--ckpt", str(run_dir), "--tta")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "TTA on:" in result.stderr + result.stdout
    assert not (run_dir / ".lock").exists()
    sub = pd.read_csv(run_dir / "submission.csv", dtype={"ImageID": str})
    info = pd.read_csv(demo_data / "eval" / "info.csv", dtype={"ImageID": str})
    assert sub["ImageID"].tolist() == info["ImageID"].tolist()

    scored = run("-m", "tools.score", str(run_dir / "submission.csv"), str(demo_data / "eval_truth.csv"))
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


def test_confusion_matrix_figure_size_and_counts():
    import numpy as np

    from utils.labels import class_names
    from utils.visuals import confusion_figure, figure_to_array

    fig = confusion_figure(np.array([0, 1, 1, 17]), np.array([0, 1, 2, 17]), class_names())
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert sorted(texts) == ["1", "1", "1", "1"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()][4] == "wear F 30-59"
    array = figure_to_array(fig)
    # drawn at a TensorBoard card's size (not shrunk there) with fonts of 8 pt at 100 dpi (11 px)
    assert array.shape == (560, 560, 3) and array.dtype == np.uint8
    assert min(t.get_fontsize() for t in [*texts_of(fig), *fig.axes[0].get_xticklabels()]) >= 8


def texts_of(fig):
    return list(fig.axes[0].texts)


def test_demo_toolkit_config_end_to_end(demo_data, tmp_path):
    import train
    from data_loader.mixing import HalfCutMix
    from model.loss import MultiTaskLoss
    from trainer.build import build_trainer
    from utils.config import load_config

    config_path = ROOT / "configs" / "demo_toolkit.yaml"
    overrides = tiny_overrides(demo_data, tmp_path, **{"trainer.epochs": 2})
    trainer = build_trainer(load_config(config_path, overrides))
    assert isinstance(trainer.mixer, HalfCutMix) and isinstance(trainer.criterion, MultiTaskLoss)
    assert trainer.criterion.task_loss.gamma == 2.0 and trainer.ema is not None
    assert trainer.train_loader.sampler.weights is not None
    result = train.main(["--config", str(config_path), *overrides])
    assert result["metric"] == "ema_val_f1" and result["epochs"] == 2
    rows = read_metrics(f"{result['run_dir']}/metrics.csv")
    assert {"ema_val_f1", "val_f1_mask", "val_f1_gender", "val_f1_age"} <= set(rows[-1])
    done = run("inference.py", "--ckpt", result["run_dir"])
    assert done.returncode == 0, done.stderr[-2000:]
