"""`train.py --refit RUN` (experiments/refit.py): the final fit on every person, for the epochs RUN chose."""
from __future__ import annotations

import json

import pytest
import yaml

import train
from experiments.refit import refit_epochs
from helpers import ROOT, fails_in_one_line, tiny_overrides
from utils.run_dir import RunDir


def fake_run(path, status="finished", best_epoch=2, metric="val_f1", **summary):
    run = RunDir(path)
    run.path.mkdir(parents=True)
    run.config.write_text((ROOT / "configs/demo.yaml").read_text())
    run.summary.write_text(json.dumps({"status": status, "best_epoch": best_epoch, "metric": metric, **summary}))
    return run


@pytest.mark.parametrize("make, expected", [
    (lambda p: (fake_run(p), (p / "folds").mkdir()), "a K-fold run already trains on every person"),
    (lambda p: (fake_run(p), (p / "seeds").mkdir()), "a repeated run"),
    (lambda p: fake_run(p, status="interrupted"), "not finished (status interrupted)"),
    (lambda p: fake_run(p, best_epoch=-1), "no validation choice"),
    (lambda p: fake_run(p, metric="train_loss"), "no validation choice"),
    (lambda p: None, "no such run directory"),
])
def test_refit_refuses_runs_without_a_validation_choice_in_one_line(tmp_path, capsys, make, expected):
    make(tmp_path / "run")
    before = sorted(p for p in tmp_path.rglob("*"))
    fails_in_one_line(train.main, ["--refit", str(tmp_path / "run"), f"save_dir={tmp_path / 'saved'}"], capsys,
                      "--refit", expected)
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_the_epochs_are_the_best_epoch_or_the_whole_schedule_of_an_averaging_recipe():
    from utils.config import load_config

    plain = load_config(ROOT / "configs/demo.yaml", ["trainer.swa=null", "trainer.epochs=14"])
    averaging = load_config(ROOT / "configs/demo.yaml", ["trainer.swa.use=true", "trainer.epochs=14"])
    assert refit_epochs(plain, {"best_epoch": 9}) == 9
    assert refit_epochs(averaging, {"best_epoch": 9}) == 14


def test_a_refit_trains_on_everyone_names_its_parent_and_sits_under_it(demo_data, tmp_path):
    from tools.runs import render, run_table

    parent = train.main(["--config", str(ROOT / "configs/demo.yaml"),
                         *tiny_overrides(demo_data, tmp_path, **{"trainer.epochs": 2})])
    refit = train.main(["--refit", parent["run_dir"], "data.num_workers=0"])
    child = RunDir(refit["run_dir"])
    assert child.path != RunDir(parent["run_dir"]).path and child.best.is_file()
    summary = json.loads(child.summary.read_text())
    assert summary["refit_of"] == str(RunDir(parent["run_dir"]).path.resolve())
    assert summary["refit_epochs"] == parent["best_epoch"] == summary["epochs"]
    config = yaml.safe_load(child.config.read_text())
    assert config["data"]["val_ratio"] == 0 and config["trainer"]["epochs"] == parent["best_epoch"]
    assert not child.val_predictions.exists()  # no validation people: nothing to keep
    rows = run_table(tmp_path)
    assert [r["refit"] for r in rows] == [False, True] and "refit" in render(rows).splitlines()[2]


def test_a_soup_recipe_is_refit_without_its_soup_which_needs_validation(tmp_path):
    from experiments.refit import refit_config

    run = fake_run(tmp_path / "run", best_epoch=5)
    recipe = yaml.safe_load(run.config.read_text())
    recipe["trainer"].update(soup={"top_k": 3, "use": True}, swa=None)
    run.config.write_text(yaml.safe_dump(recipe))
    config, overrides, _ = refit_config(run.path)
    assert config.trainer.soup is None and "trainer.soup=null" in overrides
    assert config.trainer.epochs == 5 and config.data.val_ratio == 0
