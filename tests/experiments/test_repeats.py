"""Validation predictions of every run, one split for every training seed, and `train.py --seeds N`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import train
from helpers import ROOT, fails_in_one_line, tiny_overrides
from utils.metrics import macro_f1
from utils.run import read_metrics
from utils.run_dir import PROB_COLUMNS, RunDir


def tiny(demo_data: Path, save_dir: Path, *options: str, **extra: object) -> list[str]:
    return ["--config", str(ROOT / "configs/demo.yaml"), *options, *tiny_overrides(demo_data, save_dir, **extra)]


def val_people(config) -> list[str]:
    from trainer.build import build_loaders
    from utils.dist_info import DistInfo

    _, val = build_loaders(config, DistInfo(), pin_memory=False)
    return sorted(val.dataset.paths)


def test_split_seed_alone_chooses_the_validation_people(demo_data, tmp_path):
    from utils.config import load_config

    def people(**extra):
        return val_people(load_config(ROOT / "configs/demo.yaml", tiny_overrides(demo_data, tmp_path, **extra)))

    pinned = people(seed=1, **{"data.split_seed": 7})
    assert people(seed=2, **{"data.split_seed": 7}) == pinned
    assert people(seed=7) == pinned  # null: the run's seed, so existing recipes keep their split
    assert people(seed=1) != pinned


def test_a_run_keeps_its_models_validation_predictions(demo_data, tmp_path):
    summary = train.main(tiny(demo_data, tmp_path, **{"trainer.epochs": 2}))
    run = RunDir(summary["run_dir"])
    frame = pd.read_csv(run.val_predictions, dtype={"person": str})
    assert list(frame.columns[:4]) == ["path", "person", "label", "pred"] and list(frame.columns[4:]) == PROB_COLUMNS
    assert np.allclose(frame[PROB_COLUMNS].sum(axis=1), 1, atol=1e-5)
    assert (frame["person"] == frame["path"].map(lambda p: Path(p).parent.name)).all()
    assert frame.groupby("person").size().eq(7).all()
    best = next(r for r in read_metrics(run.metrics) if r["epoch"] == summary["best_epoch"])
    written = json.loads(run.summary.read_text())
    assert written["model"] == "best" and written["status"] == "finished"
    assert macro_f1(frame["label"].to_numpy(), frame["pred"].to_numpy()) == pytest.approx(best["val_f1"], abs=1e-6)
    assert written["model_f1"] == pytest.approx(best["val_f1"], abs=1e-6) and 0 < written["model_f1_pm"] < 0.5
    assert not list(run.path.glob("*.tmp"))


@pytest.mark.slow
def test_an_averaging_recipe_keeps_the_averaged_models_predictions(demo_data, tmp_path):
    summary = train.main(tiny(demo_data, tmp_path, **{"trainer.epochs": 3, "trainer.swa": "{epochs: 2, use: true}"}))
    run = RunDir(summary["run_dir"])
    written = json.loads(run.summary.read_text())
    frame = pd.read_csv(run.val_predictions)
    assert written["model"] == "swa"
    assert written["model_f1"] == pytest.approx(macro_f1(frame["label"].to_numpy(), frame["pred"].to_numpy()))


@pytest.mark.slow
def test_seeds_train_members_on_one_split_and_summarise_them(demo_data, tmp_path, capsys):
    from tools import compare, runs

    result = train.main(tiny(demo_data, tmp_path, "--seeds", "2", seed=5, **{"trainer.epochs": 2}))
    parent = RunDir(result["run_dir"])
    members = parent.members()
    assert [m.path.name for m in members] == ["seed_5", "seed_6"]
    summaries = [json.loads(m.summary.read_text()) for m in members]
    assert [s["overrides"][-2:] for s in summaries] == [["seed=5", "data.split_seed=5"],
                                                        ["seed=6", "data.split_seed=5"]]
    frames = [pd.read_csv(m.val_predictions) for m in members]
    assert frames[0]["path"].tolist() == frames[1]["path"].tolist()
    seeds = json.loads(parent.seeds_summary.read_text())
    best = [s["best"] for s in summaries]
    assert seeds["per_seed"] == best and seeds["mean"] == pytest.approx(np.mean(best))
    assert seeds["std"] == pytest.approx(np.std(best, ddof=1))
    assert seeds["model_f1"] == pytest.approx(np.mean([s["model_f1"] for s in summaries]))
    out = compare.main([str(members[0].path), str(parent.path), "--resamples", "200"])[0]
    assert out["seeds"] == [1, 2]
    table = runs.run_table(tmp_path)
    assert table[0]["status"] == "finished" and "±" in runs.render(table)
    assert [r["timestamp"].split("/")[-1] for r in table[1:3]] == ["seed_5", "seed_6"]


@pytest.mark.slow
def test_seeds_with_all_folds_give_each_member_its_oof(demo_data, tmp_path):
    result = train.main(tiny(demo_data, tmp_path, "--seeds", "2", "--all-folds", **{"data.n_folds": 2}))
    parent = RunDir(result["run_dir"])
    oofs = [pd.read_csv(m.oof) for m in parent.members()]
    assert len(oofs) == 2 and oofs[0]["path"].sort_values().tolist() == oofs[1]["path"].sort_values().tolist()
    assert (oofs[0].set_index("path")["fold"] == oofs[1].set_index("path")["fold"]).all()  # one split
    assert "person" in oofs[0] and json.loads(parent.seeds_summary.read_text())["metric"] == "oof_f1"


def test_seeds_refuses_what_it_cannot_do(demo_data, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(tiny(demo_data, tmp_path, "--seeds", "1"))
    assert exit_info.value.code == 2 and "--seeds 1" in capsys.readouterr().err
    fails_in_one_line(train.main, tiny(demo_data, tmp_path, "--seeds", "2", "--all-folds"), capsys, "n_folds")
    assert not (tmp_path / "tiny").exists()


def test_the_runs_model_is_swa_only_when_the_recipe_averages_and_wrote_it(tmp_path, caplog):
    from types import SimpleNamespace

    from trainer.lifecycle import model_weights
    from utils.config import load_config

    averaging = load_config(ROOT / "configs/demo.yaml", ["trainer.swa.use=true", "trainer.swa.epochs=1"])
    trainer = SimpleNamespace(run_dir=RunDir(tmp_path))
    with caplog.at_level("WARNING", logger="trainer.lifecycle"):
        assert model_weights(averaging, trainer) == "best"
    assert "no swa.pth (stopped before its first averaged epoch): val_predictions.csv uses best.pth" in caplog.messages
    RunDir(tmp_path).swa.write_bytes(b"")
    assert model_weights(averaging, trainer) == "swa"
    assert model_weights(load_config(ROOT / "configs/demo.yaml", ["trainer.swa.use=false"]), trainer) == "best"
    assert model_weights(load_config(ROOT / "configs/demo.yaml", ["trainer.swa=null"]), trainer) == "best"


@pytest.mark.parametrize("name", ["val_predictions.csv", "seeds_summary.json"])
def test_the_new_run_files_are_never_an_output(tmp_path, name):
    from utils.errors import UserError
    from utils.outputs import check_outputs

    run = RunDir(tmp_path)
    run.config.write_text("seed: 1\n")
    run.summary.write_text("{}")
    (tmp_path / name).write_text("kept")
    with pytest.raises(UserError, match=f"--out {tmp_path / name}: a file of run directory {tmp_path}"):
        check_outputs({"--out": tmp_path / name})
    assert (tmp_path / name).read_text() == "kept"
    check_outputs({"--out": tmp_path / "submission.csv"})
