"""utils.run_dir: the one list of a run's files, the numbered fold and seed folders, fresh run directories."""
from pathlib import Path

import pytest

from utils.run_dir import RunDir, TuneDir, create_run_dir, numbered, read_config, run_finished


def test_fold_and_seed_folders_come_in_number_order_and_other_entries_are_strays(tmp_path):
    run = RunDir(tmp_path / "run")
    for name in ("fold_10", "fold_2", "fold_0", "fold_x", "fold_1.bak", "fold_²"):
        (run.folds_dir / name).mkdir(parents=True)
    (run.folds_dir / "fold_3").write_text("a file, not a fold")
    assert [f.path.name for f in run.folds()] == ["fold_0", "fold_2", "fold_10"]  # 2 before 10: numbers, not text
    assert [p.name for p in run.strays()] == ["fold_1.bak", "fold_3", "fold_x", "fold_²"]
    assert run.fold(2).path == run.folds_dir / "fold_2"
    for seed in (7, 42, 100):
        run.member(seed).path.mkdir(parents=True)
    (run.seeds_dir / "seed_5.old").mkdir()
    assert [m.path.name for m in run.members()] == ["seed_7", "seed_42", "seed_100"]


def test_a_run_without_folds_or_seeds_has_none_and_no_strays(tmp_path):
    run = RunDir(tmp_path / "plain")
    run.path.mkdir()
    assert list(run.folds()) == [] and run.members() == [] and run.strays() == []
    assert numbered(tmp_path / "absent", pattern=__import__("re").compile(r"x_([0-9]+)")) == []


def test_a_fold_or_member_knows_its_run_and_an_ordinary_run_is_its_own(tmp_path):
    run = RunDir(tmp_path / "tiny" / "20261207-120000")
    fold, member = run.fold(1), run.member(42)
    assert fold.is_fold and not fold.is_member and fold.top == run
    assert member.is_member and not member.is_fold and member.top == run
    assert member.fold(0).top == member  # a K-fold member's fold belongs to the member
    assert not run.is_fold and not run.is_member and run.top == run
    assert not RunDir(tmp_path / "seeds" / "seed_x").is_member  # not a seed number
    assert not RunDir(tmp_path / "other" / "seed_3").is_member and not RunDir(tmp_path / "x" / "fold_1").is_fold


def test_a_run_is_repeated_when_it_has_seed_members_or_their_summary(tmp_path):
    summary_only, folder_only, plain = (RunDir(tmp_path / n) for n in ("a", "b", "c"))
    for run in (summary_only, folder_only, plain):
        run.path.mkdir()
    summary_only.seeds_summary.write_text("{}")
    folder_only.seeds_dir.mkdir()
    assert summary_only.is_repeated and folder_only.is_repeated and not plain.is_repeated


def test_run_directories_are_never_reused(tmp_path, monkeypatch):
    import utils.run_dir

    monkeypatch.setattr(utils.run_dir.time, "strftime", lambda fmt: "20261207-120000")
    made = [create_run_dir(tmp_path, "tiny") for _ in range(4)]
    assert [p.name for p in made] == ["20261207-120000", "20261207-120000-1", "20261207-120000-2",
                                      "20261207-120000-3"]
    assert all(p.is_dir() and p.parent == tmp_path / "tiny" for p in made)
    (tmp_path / "tiny" / "20261207-120000-4").mkdir()  # taken by someone else: skipped
    assert create_run_dir(tmp_path, "tiny").name == "20261207-120000-5"


def test_a_fresh_run_directory_is_named_by_the_time(tmp_path):
    import time

    made = create_run_dir(tmp_path, "tiny").name
    assert time.strptime(made[:15], "%Y%m%d-%H%M%S")


def test_read_config_is_an_empty_mapping_for_anything_but_a_mapping(tmp_path):
    run = RunDir(tmp_path)
    assert read_config(run) == {}  # absent
    for text in ("- a list\n", "just text\n", "a: [unclosed\n"):
        run.config.write_text(text)
        assert read_config(run) == {}
    run.config.write_text("model:\n  backbone: resnet18\n")
    assert read_config(run) == {"model": {"backbone": "resnet18"}}


@pytest.mark.parametrize("epoch, epochs, stopped_early, finished", [
    (3, 3, False, True), (4, 3, False, True), (2, 3, False, False), (0, 3, True, True), (0, 0, False, True)])
def test_the_one_finished_rule(epoch, epochs, stopped_early, finished):
    assert run_finished(epoch=epoch, epochs=epochs, stopped_early=stopped_early) is finished


def test_a_run_directory_names_its_files_and_paths_behave_like_paths(tmp_path):
    run = RunDir(str(tmp_path))
    assert isinstance(run.path, Path) and str(run) == str(tmp_path) and Path(run) == tmp_path
    assert run / "x.txt" == tmp_path / "x.txt"
    names = {"config.yaml", "best.pth", "last.pth", "swa.pth", "soup.pth", "metrics.csv", "summary.json",
             "train.log", ".lock", "report.png", "val_predictions.csv", "oof.csv", "folds_summary.json",
             "seeds_summary.json"}
    assert RunDir.own_files() == names
    assert {getattr(run, n).name for n in RunDir.COMMAND_OUTPUTS} == {
        "submission.csv", "label_issues.csv", "label_issues.png", "relabel_draft.csv"}


def test_a_tuning_folder_names_its_trials_and_files(tmp_path):
    tune = TuneDir(tmp_path)
    assert tune.trial(7).path == tmp_path / "trial_0007" and tune.trial(12345).path.name == "trial_12345"
    assert [p.name for p in (tune.study_db, tune.storage_lock, tune.trials_csv, tune.best_config)] == [
        "study.db", ".storage.lock", "trials.csv", "best_config.yaml"]
    assert tune.plot("history") == tmp_path / "history.png"


def test_a_run_directory_is_made_under_folders_that_do_not_exist_yet(tmp_path):
    made = create_run_dir(tmp_path / "new" / "saved", "tiny")
    assert made.is_dir() and made.parent == tmp_path / "new" / "saved" / "tiny"


def test_a_thousand_runs_in_one_second_is_one_clear_error(tmp_path, monkeypatch):
    import utils.run_dir

    monkeypatch.setattr(utils.run_dir.time, "strftime", lambda fmt: "20261207-120000")
    base = tmp_path / "tiny"
    base.mkdir()
    (base / "20261207-120000").mkdir()
    for k in range(1, 1000):
        (base / f"20261207-120000-{k}").mkdir()
    with pytest.raises(RuntimeError, match=f"cannot create a run directory under {base}"):
        create_run_dir(tmp_path, "tiny")
