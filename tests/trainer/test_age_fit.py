"""model.age: ordinal through a run: the boundaries fitted on validation are the saved model's, are what
inference predicts with, and are kept by a refit; mixing and EMA carry the ages."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

import train
from model.age import AGE_BINS, fit_age_bounds
from model.heads import ordinal_head
from trainer.age_fit import bounds_fitter
from utils.labels import NUM_CLASSES
from utils.run_dir import PROB_COLUMNS

ORDINAL = {"model.head": "multi", "model.age": "ordinal", "trainer.epochs": 2}


def only_run(save_dir):
    (run,) = [p for p in save_dir.glob("tiny/*") if p.is_dir()]
    return run


def test_the_fitted_bounds_are_the_saved_models_and_inference_predicts_with_them(tiny_args, demo_data, tmp_path):
    from data_loader.pipeline import build_image_pipeline
    from predict.predictor import model_from_checkpoint, predict_paths
    from trainer.checkpoint import load_checkpoint
    from utils.run import read_metrics

    train.main(tiny_args(**ORDINAL))
    run = only_run(tmp_path / "saved")
    model, config = model_from_checkpoint(load_checkpoint(run / "best.pth", which="best"), "best.pth")
    bounds = tuple(int(v) for v in ordinal_head(model).age_bounds.tolist())
    summary = json.loads((run / "summary.json").read_text())
    best = next(row for row in read_metrics(run / "metrics.csv") if row["epoch"] == summary["best_epoch"])
    assert (best["val_age_low"], best["val_age_high"]) == bounds
    assert bounds != (30, 60)  # the fit moved them here, so a bound left unsaved would show

    frame = pd.read_csv(run / "val_predictions.csv")
    dataset = build_image_pipeline(config, [demo_data / "train"]).eval_dataset(frame["path"].tolist(), seed=0)
    images = torch.stack([torch.as_tensor(dataset[i][0]) for i in range(len(dataset))])
    model.eval()
    ordinal_head(model).emit_bins = True
    with torch.no_grad():
        out = model(images)
    assert out.shape[1] == NUM_CLASSES + AGE_BINS
    assert fit_age_bounds(out[:, :NUM_CLASSES].numpy(), out[:, NUM_CLASSES:].numpy(), frame["label"].to_numpy()) \
        == bounds
    ordinal_head(model).emit_bins = False
    probs = predict_paths(model, config, frame["path"].tolist(), [demo_data / "train"], source="best.pth",
                          device=torch.device("cpu"), num_workers=0)
    saved = frame[PROB_COLUMNS].to_numpy()
    assert probs.shape == saved.shape and np.allclose(probs, saved, atol=1e-5)


def test_a_refit_keeps_the_bounds_fitted_on_the_runs_validation(tiny_args, tmp_path):
    from experiments.refit import refit_config
    from trainer.checkpoint import load_checkpoint, save_checkpoint

    train.main(tiny_args(**{**ORDINAL, "trainer.epochs": 1}))
    run = only_run(tmp_path / "saved")
    state = load_checkpoint(run / "best.pth", which="best")
    state["model"]["head.age_bounds"] = torch.tensor([24.0, 53.0])
    save_checkpoint(state, run / "best.pth")
    config, overrides, _ = refit_config(run)
    assert config.data.age_bounds == (24, 53) and config.data.val_ratio == 0


def test_the_fit_runs_on_each_evaluated_model_with_mixing_and_ema(make_trainer):
    trainer = make_trainer(**{**ORDINAL, "trainer.epochs": 1, "augment.cutmix": "{prob: 1.0}",
                                         "augment.cutmix_mode": "half", "trainer.ema": "{decay: 0.9}"})
    metrics = trainer.run_epoch()
    assert np.isfinite(metrics["train_loss"])
    for prefix, net in (("val", trainer.model), ("ema_val", trainer.ema.module)):
        low, high = ordinal_head(net).age_bounds.tolist()
        assert (metrics[f"{prefix}_age_low"], metrics[f"{prefix}_age_high"]) == (low, high)


def test_the_fitter_leaves_other_models_and_outputs_alone():
    from model.heads import MultiTaskHead

    assert bounds_fitter(torch.nn.Linear(2, 18)) is None
    net = torch.nn.Module()
    net.head = MultiTaskHead(4, age="ordinal")
    fit = bounds_fitter(net)
    plain = torch.randn(3, NUM_CLASSES)
    assert fit(plain, torch.zeros(3, dtype=torch.long)) is plain


@pytest.mark.parametrize("head", ["linear", "shallow"])
def test_an_ordinal_age_needs_the_multi_task_head(tiny_args, capsys, head):
    from helpers import fails_in_one_line

    fails_in_one_line(train.main, tiny_args(**{"model.head": head, "model.age": "ordinal"}), capsys,
                      "model.age: ordinal needs model.head: multi", head)
