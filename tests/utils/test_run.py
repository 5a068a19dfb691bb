"""`utils.run`: a run directory opened for reading. Which weights it means for prediction and for
--all-folds (best.pth, or swa.pth when the run says so or `--which` asks; folds; members), whether it
finished, its config read without torch."""
import json

import pandas as pd
import pytest

from helpers import ROOT, tiny_overrides
from utils.errors import UserError
from utils.run import Run, model_files


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
    assert model_files(plain) == [plain / "best.pth"]
    assert model_files(plain, "swa") == [plain / "swa.pth"]
    swa = run_dir(tmp_path / "swa", use=True)
    assert model_files(swa) == [swa / "swa.pth"] and model_files(swa, "best") == [swa / "best.pth"]
    assert model_files(swa / "best.pth") == [swa / "best.pth"]  # a file is itself


def test_a_missing_swa_pth_is_one_line_when_asked_for_and_best_with_a_warning_otherwise(tmp_path, caplog):
    early = run_dir(tmp_path / "early", use=True, files=("best.pth",))
    assert model_files(early) == [early / "best.pth"]
    assert caplog.messages == [f"{early}: no swa.pth (stopped before its first averaged epoch); using best.pth"]
    with pytest.raises(UserError) as error:
        model_files(early, "swa")
    assert str(error.value) == (f"{early / 'swa.pth'}: not found (a run writes it with trainer.swa, unless it "
                                "stopped before its first averaged epoch); use --which best")


def test_each_fold_of_a_kfold_run_uses_the_runs_weights(tmp_path, caplog):
    run = run_dir(tmp_path / "kfold", use=True, files=(), n_folds=2)
    run_dir(run / "folds" / "fold_0")
    run_dir(run / "folds" / "fold_1", files=("best.pth",))  # stopped before averaging
    assert model_files(run) == [run / "folds/fold_0/swa.pth", run / "folds/fold_1/best.pth"]
    assert "fold_1: no swa.pth" in caplog.text
    assert model_files(run, "best") == [run / "folds/fold_0/best.pth", run / "folds/fold_1/best.pth"]


def test_a_fold_beyond_the_runs_fold_count_is_left_out_and_named(tmp_path, caplog):
    run = run_dir(tmp_path / "kfold", files=(), n_folds=2)
    for k in range(3):
        run_dir(run / "folds" / f"fold_{k}", files=("best.pth",))
    assert model_files(run) == [run / "folds/fold_0/best.pth", run / "folds/fold_1/best.pth"]
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


def test_the_model_is_swa_only_when_the_runs_config_uses_it(tmp_path):
    def which(path):
        return Run.open(path).model_which

    assert which(run_dir(tmp_path / "on", use=True)) == "swa"
    assert which(run_dir(tmp_path / "off", use=False)) == "best"
    assert which(run_dir(tmp_path / "plain")) == "best"
    assert which(tmp_path / "no-config") == "best"
    broken = run_dir(tmp_path / "broken")
    (broken / "config.yaml").write_text("trainer: [unclosed\n")
    assert which(broken) == "best"
    (broken / "config.yaml").write_text("trainer: 3\n")
    assert which(broken) == "best"


def test_a_kfold_run_without_a_readable_fold_count_keeps_every_fold_with_a_best_pth(tmp_path, caplog):
    run = tmp_path / "kfold"
    for k in range(3):
        run_dir(run / "folds" / f"fold_{k}", files=("best.pth",) if k != 1 else ())
    (run / "folds" / "backup").mkdir()
    assert model_files(run) == [run / "folds/fold_0/best.pth", run / "folds/fold_2/best.pth"]
    assert caplog.messages == [f"{run / 'folds'}: backup, fold_1 left out (not one of the run's K folds with a "
                               "best.pth)"]


def test_nothing_usable_in_folds_is_the_runs_missing_best_pth_without_a_warning(tmp_path, caplog):
    run = run_dir(tmp_path / "kfold", files=(), n_folds=2)
    run_dir(run / "folds" / "fold_0", files=())
    (run / "folds" / "copy").mkdir()
    with pytest.raises(UserError) as caught:
        model_files(run)
    assert str(caught.value) == f"{run}: this run directory holds no best.pth (yet)" and caplog.messages == []


def test_a_folds_directory_is_its_runs_folds_and_other_folders_are_not(tmp_path):
    run = run_dir(tmp_path / "kfold", files=(), n_folds=2)
    for k in range(3):
        run_dir(run / "folds" / f"fold_{k}", files=("best.pth",))
    assert model_files(run / "folds") == [run / "folds/fold_0/best.pth", run / "folds/fold_1/best.pth"]
    (run / "logs").mkdir()
    with pytest.raises(UserError, match="holds no best.pth"):  # not the parent run's folds
        model_files(run / "logs")
    own = run_dir(tmp_path / "own", files=("best.pth",))
    run_dir(own / "folds" / "fold_0", files=("best.pth",))
    assert model_files(own) == [own / "best.pth"]  # a run's own best.pth before any folds inside it


def test_a_repeated_run_means_every_members_model(tmp_path):
    run = tmp_path / "repeated"
    run_dir(run / "seeds" / "seed_2", files=("best.pth",))
    run_dir(run / "seeds" / "seed_10", use=True)
    kfold = run_dir(run / "seeds" / "seed_3", files=(), n_folds=2)
    for k in range(2):
        run_dir(kfold / "folds" / f"fold_{k}", files=("best.pth",))
    assert model_files(run) == [run / "seeds/seed_2/best.pth", run / "seeds/seed_3/folds/fold_0/best.pth",
                                run / "seeds/seed_3/folds/fold_1/best.pth", run / "seeds/seed_10/swa.pth"]
    assert model_files(run, "best")[-1] == run / "seeds/seed_10/best.pth"
    assert Run.open(run).kind == "repeated" and Run.open(kfold).kind == "kfold"
    assert Run.open(run / "seeds" / "seed_2").kind == "single"


def test_a_run_is_finished_when_its_summary_says_so_and_its_epochs_are_done(tmp_path):
    def run_with(name, summary, files=("best.pth", "last.pth")):
        path = run_dir(tmp_path / name, files=files)
        if summary is not None:
            (path / "summary.json").write_text(json.dumps(summary) if isinstance(summary, dict) else summary)
        return Run.open(path)

    done = {"status": "finished", "epochs": 2, "stopped_early": False}
    assert run_with("done", done).finished
    assert run_with("early", {**done, "status": "stopped early", "epochs": 1, "stopped_early": True}).finished
    assert not run_with("short", {**done, "epochs": 1}).finished  # config.yaml plans 2 epochs
    assert not run_with("running", {**done, "status": "running"}).finished
    assert not run_with("no-last", done, files=("best.pth",)).finished
    assert not run_with("no-summary", None).finished
    assert not run_with("damaged", "{not json").finished
    assert not run_with("foreign", {"status": "finished"}).finished


def test_a_saved_config_and_the_run_table_are_read_without_torch(tmp_path):
    """The run table and `--resume` of a finished run read config.yaml through the pure schema: no torch."""
    import subprocess
    import sys

    from utils.config import load_config, save_config

    run = tmp_path / "saved" / "demo" / "20250101-000000"
    run.mkdir(parents=True)
    save_config(load_config(ROOT / "configs/demo.yaml"), run / "config.yaml")
    (run / "summary.json").write_text(json.dumps({"status": "finished", "epochs": 14, "stopped_early": False}))
    (run / "last.pth").write_bytes(b"x")
    code = (
        "import sys; from utils.run import Run; import train; from tools.runs import run_table\n"
        f"run = Run.open({str(run)!r}); assert run.config.model.backbone == 'resnet10t'\n"
        f"assert run.config.augment.image_size == (128, 96) and run.finished\n"
        f"assert train.finished_run(run.path)['epochs'] == 14\n"
        f"assert len(run_table({str(tmp_path / 'saved')!r})) == 1\n"
        "heavy = sorted(m for m in ('torch', 'timm') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_soup_run_means_its_soup_pth_and_falls_back_to_best_only_when_not_asked_for_it(tmp_path, caplog):
    soup = tmp_path / "soup"
    soup.mkdir()
    (soup / "config.yaml").write_text("trainer:\n  epochs: 2\n  soup: {top_k: 3, use: true}\n")
    for name in ("best.pth", "soup.pth"):
        (soup / name).write_bytes(b"x")
    assert Run.open(soup).model_which == "soup" and model_files(soup) == [soup / "soup.pth"]
    assert model_files(soup, "best") == [soup / "best.pth"]
    (soup / "soup.pth").unlink()
    assert model_files(soup) == [soup / "best.pth"]
    assert caplog.messages[-1] == f"{soup}: no soup.pth (no validated epoch); using best.pth"
    with pytest.raises(UserError) as error:
        model_files(soup, "soup")
    assert str(error.value) == (f"{soup / 'soup.pth'}: not found (a run writes it with trainer.soup, unless it had no "
                                "validated epoch); use --which best")


def test_metrics_rows_are_numbers_with_an_integer_epoch_and_a_damaged_row_is_named(tmp_path):
    from utils.errors import DataError
    from utils.run import read_metrics

    path = tmp_path / "metrics.csv"
    assert read_metrics(path) == []  # a run that has not validated yet
    path.write_text("epoch,train_loss,val_f1,lr\n1,0.9,0.25,1e-3\n2,0.7,,5e-4\n")
    rows = read_metrics(path)
    assert rows == [{"epoch": 1, "train_loss": 0.9, "val_f1": 0.25, "lr": 1e-3}, {"epoch": 2, "train_loss": 0.7,
                                                                                   "lr": 5e-4}]
    assert all(type(row["epoch"]) is int for row in rows)
    for damaged in ("epoch,val_f1\n1,0.3\n2,abc\n", "val_f1\n0.3\n", "epoch,val_f1\n,0.3\n"):
        path.write_text(damaged)
        with pytest.raises(DataError) as err:
            read_metrics(path)
        assert str(err.value).startswith(f"{path}: line ") and "not a metrics row (the file is damaged)" in str(
            err.value)
    path.write_text("epoch,val_f1\n1,0.3\n2,abc\n")
    with pytest.raises(DataError, match="line 3: "):
        read_metrics(path)


def test_a_summary_that_is_not_a_mapping_reads_as_empty(tmp_path):
    from utils.run import read_summary

    assert read_summary(tmp_path) == {}
    for text in ("[1, 2]", "{broken", "\"text\""):
        (tmp_path / "summary.json").write_text(text)
        assert read_summary(tmp_path) == {}
    (tmp_path / "summary.json").write_text('{"status": "finished"}')
    assert read_summary(tmp_path) == {"status": "finished"}


def test_a_checkpoint_is_a_file_or_a_run_directorys_last_or_best(tmp_path):
    from utils.run import checkpoint_file

    run = run_dir(tmp_path / "run", files=("best.pth",))
    assert checkpoint_file(run, "best") == run / "best.pth" and checkpoint_file(run / "best.pth") == run / "best.pth"
    with pytest.raises(UserError) as err:
        checkpoint_file(run)
    assert str(err.value) == f"{run}: this run directory holds no last.pth (yet)"
    with pytest.raises(UserError) as err:
        checkpoint_file(tmp_path / "gone.pth")
    assert str(err.value) == f"{tmp_path / 'gone.pth'}: checkpoint not found"


def test_a_run_knows_its_kind(tmp_path):
    single = Run.open(run_dir(tmp_path / "single"))
    kfold = Run.open(run_dir(tmp_path / "kfold", n_folds=2))
    (kfold.path / "folds").mkdir()
    summary_only = Run.open(run_dir(tmp_path / "summary_only"))
    (summary_only.path / "folds_summary.json").write_text("{}")
    repeated = Run.open(run_dir(tmp_path / "repeated"))
    (repeated.path / "seeds").mkdir()
    assert [r.kind for r in (single, kfold, summary_only, repeated)] == ["single", "kfold", "kfold", "repeated"]
    assert kfold.n_folds() == 2 and single.n_folds() is None and str(single) == str(tmp_path / "single")


def test_the_recipe_names_its_model_and_a_run_may_be_asked_for_its_last_checkpoint(tmp_path):
    from utils.config import load_config
    from utils.run import model_choice

    assert model_choice(load_config(None, ["trainer.soup.use=true"])) == "soup"
    assert model_choice(load_config(None, ["trainer.swa.use=true"])) == "swa"
    assert model_choice(load_config(None, [])) == "best"
    run = run_dir(tmp_path / "run", files=("best.pth", "last.pth"))
    assert model_files(run, "last") == [run / "last.pth"] and Run.open(run).weights_file("last") == run / "last.pth"
    only_last = run_dir(tmp_path / "only_last", files=("last.pth",))  # stopped before its first validation
    assert model_files(only_last, "last") == [only_last / "last.pth"]


def test_a_run_holding_only_its_averaged_model_means_it(tmp_path):
    soup = tmp_path / "soup"
    soup.mkdir()
    (soup / "config.yaml").write_text("trainer:\n  epochs: 2\n  soup: {top_k: 3, use: true}\n")
    (soup / "soup.pth").write_bytes(b"x")
    assert model_files(soup) == [soup / "soup.pth"]
