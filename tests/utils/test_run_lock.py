"""utils.run_lock and RunDir.create: a lock left by a dead process never blocks, a live one is one line naming
its pid, and runs started in the same second get directories of their own."""
import os
import subprocess
import sys
import time

import pytest

import train
from helpers import ROOT, fails_in_one_line, tiny_overrides
from utils.errors import UserError
from utils.run_dir import RunDir
from utils.run_lock import clean_temp_files, run_lock


def test_a_lock_file_left_by_a_dead_process_is_taken_over_and_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = tmp_path / "run" / ".lock"
    lock.parent.mkdir()
    lock.write_text(dead.stdout.strip())  # what a killed trainer leaves: its pid, no holder
    with run_lock(lock):
        assert lock.read_text() == str(os.getpid())
    assert not lock.exists()


def test_a_lock_held_by_a_live_process_is_one_line_naming_it(tmp_path):
    lock = tmp_path / ".lock"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from utils.run_lock import run_lock\n"
                               f"with run_lock(Path({str(lock)!r})):\n    print('locked', flush=True); time.sleep(30)"],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserError, match=f"another training process \\(pid {holder.pid}\\) is using this run"):
            with run_lock(lock):
                pass
        assert lock.read_text() == str(holder.pid)  # the holder's lock is left alone
    finally:
        holder.kill()
        holder.wait()


def test_runs_started_in_the_same_second_get_directories_of_their_own(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "strftime", lambda fmt: "20260101-120000")
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "20260101-120000-1").write_text("a file in the way")
    made = [RunDir.create(tmp_path, "tiny").path.name for _ in range(3)]
    assert made == ["20260101-120000", "20260101-120000-2", "20260101-120000-3"]


def test_temp_files_of_a_killed_writer_are_removed_and_nothing_else(tmp_path):
    for name in (".best.pth.abc123.tmp", ".metrics.csv.x.tmp", "best.pth", "notes.tmp"):
        (tmp_path / name).write_text("x")
    removed = sorted(p.name for p in clean_temp_files(tmp_path))
    assert removed == [".best.pth.abc123.tmp", ".metrics.csv.x.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pth", "notes.tmp"]


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_a_save_dir_that_is_or_lies_under_a_file_is_one_line(demo_data, tmp_path, capsys, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    save_dir = blocker if where == "a file" else blocker / "sub"
    argv = ["--config", str(ROOT / "configs/demo.yaml"), *tiny_overrides(demo_data, save_dir)]
    fails_in_one_line(train.main, argv, capsys, str(blocker), "Not a directory")
    assert blocker.read_text() == "x"


def test_a_temp_file_another_process_removed_meanwhile_is_no_error(tmp_path, monkeypatch):
    """Two commands opening one run may both clean it: the file listed may be gone by the time it is removed."""
    import pathlib

    gone = tmp_path / ".best.pth.abc123.tmp"
    monkeypatch.setattr(pathlib.Path, "glob", lambda self, pattern: iter([gone]))
    assert clean_temp_files(tmp_path) == [gone]
