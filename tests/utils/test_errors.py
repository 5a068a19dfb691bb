import shutil

import pytest

import train
from helpers import ROOT, tiny_overrides
from utils.errors import DataError, did_you_mean, first_line, one_line


def test_one_line_unwraps_dataloader_worker_errors():
    wrapped = DataError(
        "Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\nutils.errors.DataError: /d/a.jpg: cannot decode image (truncated)\n'
    )
    assert one_line(wrapped) == "/d/a.jpg: cannot decode image (truncated)"
    assert one_line(DataError("plain\nmessage")) == "plain message"


@pytest.mark.parametrize("workers", [0, 1])
def test_truncated_image_fails_training_naming_file(demo_data, tmp_path, capsys, workers):
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    victim = sorted((data / "train" / "images").glob("*/mask2.jp*g"))[0]
    victim.write_bytes(victim.read_bytes()[:300])  # header intact, pixels cut off
    argv = ["--config", str(ROOT / "configs/demo.yaml"),
            *tiny_overrides(data, tmp_path / "saved", **{"data.num_workers": workers, "data.jpeg_draft": "false"})]
    with pytest.raises(SystemExit) as exit_info:
        train.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(victim) in err


def test_ctrl_c_outside_training_is_one_line_and_130(capsys):
    from utils.cli import cli_main

    @cli_main
    def predicting():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit_info:
        predicting()
    assert exit_info.value.code == 130 and capsys.readouterr().err.strip().splitlines()[-1] == (
        "interrupted: earlier outputs kept, nothing half-written")


@pytest.mark.slow  # a subprocess or a worker pool: make test only
def test_an_interrupted_test_run_stops_its_child_processes():
    import subprocess
    import sys
    import time

    from helpers import descendants, stop_descendants

    holder = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
                               "'import time; time.sleep(60)']); time.sleep(60)"])
    deadline = time.time() + 30
    while len(descendants(holder.pid)) < 1 and time.time() < deadline:
        time.sleep(0.1)
    grandchild = descendants(holder.pid)
    assert grandchild
    stop_descendants(holder.pid)
    holder.kill()
    holder.wait()
    def running(pid: int) -> bool:  # a zombie (state Z) waits for its parent to read it: it is stopped
        try:
            return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    assert not [pid for pid in grandchild if running(pid)]


def test_the_hint_names_at_most_three_close_choices_closest_first():
    import difflib

    choices = ["lr", "lr_mix", "lr_min", "lr_max", "lr_mine", "momentum"]
    assert len(difflib.get_close_matches("lr_mim", choices, n=10, cutoff=0.5)) > 3  # more are close than shown
    best = difflib.get_close_matches("lr_mim", choices, n=3, cutoff=0.5)
    assert did_you_mean("lr_mim", choices) == f" (did you mean: {', '.join(best)}?)"
    assert did_you_mean("batchsize", ["batch_size", "epochs"]) == " (did you mean: batch_size?)"
    assert did_you_mean("zzz", choices) == ""
    assert did_you_mean("lr", ["lr_min"]) == " (did you mean: lr_min?)"  # similarity 0.5: close enough


def test_the_first_line_of_an_error_or_its_name_when_it_says_nothing():
    assert first_line(DataError("  a.csv: line 3: bad\nmore detail\n")) == "a.csv: line 3: bad"
    assert first_line(KeyError()) == "KeyError" and first_line(ValueError("   ")) == "ValueError"


def test_one_line_joins_a_multi_line_message():
    assert one_line(DataError("a.csv:\n  line 3:   bad  ")) == "a.csv: line 3: bad"


def test_a_worker_error_whose_last_line_has_no_class_name_is_kept_whole():
    wrapped = RuntimeError("Caught an error in DataLoader worker process 1.\nOriginal Traceback (most recent call "
                           "last):\n  File \"x.py\", line 3\nKeyboardInterrupt")
    assert one_line(wrapped) == "KeyboardInterrupt"
