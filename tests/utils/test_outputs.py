"""`utils.outputs`: an output never replaces an input, another output or a run's own file, and its place is
writable; the protected run files are derived from `utils.run_dir.RunDir`, so a new run file is protected."""
from pathlib import Path

import pytest

from utils.errors import UserError
from utils.outputs import RUN_FILES, check_outputs
from utils.run_dir import RunDir

PROMISED = {"config.yaml", "best.pth", "last.pth", "swa.pth", "metrics.csv", "summary.json", "train.log", "oof.csv",
            "val_predictions.csv", "report.png", "folds_summary.json", "seeds_summary.json"}  # README's run files


def run_directory(path: Path) -> RunDir:
    run = RunDir(path)
    path.mkdir(parents=True)
    run.config.write_text("trainer: {epochs: 1}\n")
    run.best.write_bytes(b"weights")
    return run


def test_the_protected_files_are_every_file_run_dir_names_but_other_commands_outputs():
    here = RunDir(".")
    assert PROMISED <= RUN_FILES
    assert {getattr(here, name).name for name in RunDir.COMMAND_OUTPUTS}.isdisjoint(RUN_FILES)
    named = {v.name for n, v in ((n, getattr(here, n)) for n, p in vars(RunDir).items() if isinstance(p, property))
             if isinstance(v, Path) and n not in RunDir.FOLDERS}
    assert named - RUN_FILES == {getattr(here, name).name for name in RunDir.COMMAND_OUTPUTS}


@pytest.mark.parametrize("name", sorted(RUN_FILES))
def test_no_output_replaces_a_runs_own_file(tmp_path, name):
    run = run_directory(tmp_path / "run")
    with pytest.raises(UserError, match=rf"^--out {run.path / name}: a file of run directory {run.path}; "):
        check_outputs({"--out": run.path / name})
    check_outputs({"--out": tmp_path / name})  # the same name outside a run directory is fine


def test_other_commands_write_their_files_into_a_run_directory(tmp_path):
    run = run_directory(tmp_path / "run")
    check_outputs({"--out": run.submission, "--issues": run.label_issues, "--draft": run.relabel_draft})


def test_an_output_is_not_an_input_nor_another_output_and_its_place_is_writable(tmp_path):
    data = tmp_path / "in.csv"
    data.write_text("x\n")
    with pytest.raises(UserError, match="that is the truth"):
        check_outputs({"--out": tmp_path / "." / "in.csv"}, {"the truth": [data]})
    with pytest.raises(UserError, match="the same file as --a"):
        check_outputs({"--a": tmp_path / "o.csv", "--b": tmp_path / "sub" / ".." / "o.csv"})
    with pytest.raises(UserError, match="is a directory"):
        check_outputs({"--out": tmp_path})
    check_outputs({"--out": tmp_path / "new" / "deeper" / "o.csv", "--none": None})


@pytest.mark.parametrize("marker, protected", [("best.pth", True), ("last.pth", True), ("summary.json", True),
                                               ("metrics.csv", False), (None, False)])
def test_a_folder_is_a_run_directory_when_it_holds_a_config_and_weights_or_a_summary(tmp_path, marker, protected):
    folder = tmp_path / "maybe"
    folder.mkdir()
    (folder / "config.yaml").write_text("trainer: {epochs: 1}\n")
    if marker:
        (folder / marker).write_text("x")
    if protected:
        with pytest.raises(UserError, match="a file of run directory"):
            check_outputs({"--out": folder / "metrics.csv"})
    else:
        check_outputs({"--out": folder / "metrics.csv"})
    (folder / "config.yaml").unlink()
    check_outputs({"--out": folder / "metrics.csv"})  # no config: not a run directory


def test_an_output_reached_through_a_link_is_still_the_input(tmp_path):
    data = tmp_path / "in.csv"
    data.write_text("x\n")
    (tmp_path / "alias.csv").symlink_to(data)
    with pytest.raises(UserError) as err:
        check_outputs({"--out": tmp_path / "alias.csv"}, {"the truth": [data]})
    assert str(err.value) == (f"--out {tmp_path / 'alias.csv'}: that is the truth ({data}), which this command "
                              "reads; writing there would destroy it")
    (tmp_path / "later.csv").symlink_to(tmp_path / "target.csv")  # neither exists yet: compared by real path
    with pytest.raises(UserError, match="the same file as --a"):
        check_outputs({"--a": tmp_path / "target.csv", "--b": tmp_path / "later.csv"})


def test_an_output_under_a_file_names_the_file(tmp_path):
    blocker = tmp_path / "plain.txt"
    blocker.write_text("not a folder")
    with pytest.raises(UserError) as err:
        check_outputs({"--out": blocker / "sub" / "o.csv"})
    assert str(err.value) == f"--out {blocker / 'sub' / 'o.csv'}: {blocker} is not a directory"


def test_every_input_of_every_source_is_checked(tmp_path):
    inputs = {"the model": [tmp_path / "a.pth", tmp_path / "b.pth"], "the data": [tmp_path / "c.csv"]}
    for name in ("b.pth", "c.csv"):
        with pytest.raises(UserError, match=f"{name}: that is the"):
            check_outputs({"--out": tmp_path / name}, inputs)
    with pytest.raises(UserError, match="--c .*the same file as --a"):
        check_outputs({"--a": tmp_path / "o", "--b": tmp_path / "p", "--c": tmp_path / "o"})


def test_a_place_that_cannot_be_written_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    """Tests run as root here, for whom every file is writable: `os.access` is told which places are not."""
    import os

    import utils.outputs

    locked, readonly = tmp_path / "locked", tmp_path / "old.csv"
    locked.mkdir()
    readonly.write_text("x\n")
    (tmp_path / "kept.csv").write_text("x\n")
    denied = {(str(locked), os.W_OK | os.X_OK), (str(readonly), os.W_OK)}
    monkeypatch.setattr(utils.outputs.os, "access", lambda path, mode: (str(path), mode) not in denied)
    check_outputs({"--out": tmp_path / "kept.csv"})  # an existing writable file may be replaced
    for path in (locked / "new" / "o.csv", readonly):
        with pytest.raises(UserError) as err:
            check_outputs({"--out": path})
        assert str(err.value) == f"--out {path}: is not writable"
    with pytest.raises(UserError) as err:
        check_outputs({"--out": tmp_path})
    assert str(err.value) == f"--out {tmp_path}: is a directory"

