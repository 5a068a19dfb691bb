"""Which weights a run directory means for prediction and for --all-folds: best.pth, or swa.pth when the run
says so (`trainer.swa.use`) or `--which` asks."""
import json

import pandas as pd
import pytest

from helpers import ROOT, tiny_overrides
from predict.predictor import expand_checkpoint
from utils.errors import UserError


def run_dir(path, use=None, files=("best.pth", "swa.pth"), n_folds=None):
    path.mkdir(parents=True)
    swa = "" if use is None else f"  swa: {{epochs: 1, bn_update: true, use: {str(use).lower()}}}\n"
    folds = f"data:\n  n_folds: {n_folds}\n" if n_folds else ""
    (path / "config.yaml").write_text(f"{folds}trainer:\n  epochs: 2\n{swa}")
    for name in files:
        (path / name).write_bytes(b"x")
    return path


def test_a_run_means_its_best_pth_unless_it_uses_its_swa_pth(tmp_path):
    plain = run_dir(tmp_path / "plain")
    assert expand_checkpoint(plain) == [plain / "best.pth"]
    assert expand_checkpoint(plain, "swa") == [plain / "swa.pth"]
    swa = run_dir(tmp_path / "swa", use=True)
    assert expand_checkpoint(swa) == [swa / "swa.pth"] and expand_checkpoint(swa, "best") == [swa / "best.pth"]
    assert expand_checkpoint(swa / "best.pth") == [swa / "best.pth"]  # a file is itself


def test_a_missing_swa_pth_is_one_line_when_asked_for_and_best_with_a_warning_otherwise(tmp_path, caplog):
    early = run_dir(tmp_path / "early", use=True, files=("best.pth",))
    assert expand_checkpoint(early) == [early / "best.pth"]
    assert caplog.messages == [f"{early}: no swa.pth (stopped before its first averaged epoch); using best.pth"]
    with pytest.raises(UserError) as error:
        expand_checkpoint(early, "swa")
    assert str(error.value) == (f"{early / 'swa.pth'}: not found (a run writes it with trainer.swa, unless it "
                                "stopped before its first averaged epoch); use --which best")


def test_each_fold_of_a_kfold_run_uses_the_runs_weights(tmp_path, caplog):
    run = run_dir(tmp_path / "kfold", use=True, files=(), n_folds=2)
    run_dir(run / "folds" / "fold_0")
    run_dir(run / "folds" / "fold_1", files=("best.pth",))  # stopped before averaging
    assert expand_checkpoint(run) == [run / "folds/fold_0/swa.pth", run / "folds/fold_1/best.pth"]
    assert "fold_1: no swa.pth" in caplog.text
    assert expand_checkpoint(run, "best") == [run / "folds/fold_0/best.pth", run / "folds/fold_1/best.pth"]


def test_a_fold_beyond_the_runs_fold_count_is_left_out_and_named(tmp_path, caplog):
    run = run_dir(tmp_path / "kfold", files=(), n_folds=2)
    for k in range(3):
        run_dir(run / "folds" / f"fold_{k}", files=("best.pth",))
    assert expand_checkpoint(run) == [run / "folds/fold_0/best.pth", run / "folds/fold_1/best.pth"]
    assert caplog.messages == [f"{run / 'folds'}: fold_2 left out (not one of the run's 2 folds with a best.pth)"]


def test_inference_which_needs_runs(capsys):
    import inference

    with pytest.raises(SystemExit) as exit_info:
        inference.parse_args(["--onnx", "m.onnx", "--which", "swa"])
    assert exit_info.value.code == 2 and "--which picks the weights of --ckpt runs" in capsys.readouterr().err


@pytest.mark.slow  # two folds trained
def test_all_folds_with_swa_use_writes_oof_from_swa_and_inference_follows(demo_data, tmp_path, capsys, caplog):
    import inference
    import train

    overrides = tiny_overrides(demo_data, tmp_path, **{"trainer.epochs": 2, "data.n_folds": 2,
                                                      "trainer.swa": "{epochs: 1, use: true}"})
    done = train.main(["--config", str(ROOT / "configs/demo.yaml"), "--all-folds", *overrides])
    run = tmp_path / "tiny" / done["run_dir"].split("/")[-1]
    assert json.loads((run / "folds_summary.json").read_text())["weights"] == "swa"
    with caplog.at_level("INFO"):
        inference.main(["--ckpt", str(run), "--out", str(tmp_path / "sub.csv")])
    assert f"with {run}/folds/fold_0/swa.pth" in caplog.text and f"with {run}/folds/fold_1/swa.pth" in caplog.text
    assert len(pd.read_csv(tmp_path / "sub.csv")) == len(pd.read_csv(demo_data / "eval" / "info.csv"))


def test_run_weights_is_swa_only_when_the_runs_config_uses_it(tmp_path):
    from predict.predictor import run_weights
    from utils.run_dir import RunDir

    assert run_weights(RunDir(run_dir(tmp_path / "on", use=True))) == "swa"
    assert run_weights(RunDir(run_dir(tmp_path / "off", use=False))) == "best"
    assert run_weights(RunDir(run_dir(tmp_path / "plain"))) == "best"
    assert run_weights(RunDir(tmp_path / "no-config")) == "best"
    broken = run_dir(tmp_path / "broken")
    (broken / "config.yaml").write_text("trainer: [unclosed\n")
    assert run_weights(RunDir(broken)) == "best"


def test_a_kfold_run_without_a_readable_fold_count_keeps_every_fold_with_a_best_pth(tmp_path, caplog):
    run = tmp_path / "kfold"
    for k in range(3):
        run_dir(run / "folds" / f"fold_{k}", files=("best.pth",) if k != 1 else ())
    (run / "folds" / "backup").mkdir()
    assert expand_checkpoint(run) == [run / "folds/fold_0/best.pth", run / "folds/fold_2/best.pth"]
    assert caplog.messages == [f"{run / 'folds'}: backup, fold_1 left out (not one of the run's K folds with a "
                               "best.pth)"]


def test_nothing_usable_in_folds_is_the_runs_missing_best_pth_without_a_warning(tmp_path, caplog):
    run = run_dir(tmp_path / "kfold", files=(), n_folds=2)
    run_dir(run / "folds" / "fold_0", files=())
    (run / "folds" / "copy").mkdir()
    with pytest.raises(UserError) as caught:
        expand_checkpoint(run)
    assert str(caught.value) == f"{run}: this run directory holds no best.pth (yet)" and caplog.messages == []


def test_a_folds_directory_is_its_runs_folds_and_other_folders_are_not(tmp_path):
    run = run_dir(tmp_path / "kfold", files=(), n_folds=2)
    for k in range(3):
        run_dir(run / "folds" / f"fold_{k}", files=("best.pth",))
    assert expand_checkpoint(run / "folds") == [run / "folds/fold_0/best.pth", run / "folds/fold_1/best.pth"]
    (run / "logs").mkdir()
    with pytest.raises(UserError, match="holds no best.pth"):  # not the parent run's folds
        expand_checkpoint(run / "logs")
    own = run_dir(tmp_path / "own", files=("best.pth",))
    run_dir(own / "folds" / "fold_0", files=("best.pth",))
    assert expand_checkpoint(own) == [own / "best.pth"]  # a run's own best.pth before any folds inside it
