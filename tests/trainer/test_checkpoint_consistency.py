"""best.pth and last.pth agree after a crash at any write; runs restart, lock and clean up."""
import os
import subprocess
import sys
import time

import pytest
import torch

import train
from helpers import ROOT, tiny_overrides
from trainer.checkpoint import reconcile
from utils import io
from utils.run_dir import RunDir

EXTRA = {"trainer.epochs": 3, "model.dropout": 0.2}


class SimulatedKill(BaseException):
    """Stands for kill -9: nothing in the framework catches it."""


def count_writes(monkeypatch):
    calls = []
    real = io.os.replace

    def counting(src, dst):
        calls.append(str(dst))
        return real(src, dst)

    monkeypatch.setattr(io.os, "replace", counting)
    return calls


def kill_at(monkeypatch, k):
    """Make the k-th atomic write of the process die before it lands."""
    real, seen = io.os.replace, []

    def dying(src, dst):
        seen.append(dst)
        if len(seen) == k + 1:
            raise SimulatedKill(str(dst))
        return real(src, dst)

    monkeypatch.setattr(io.os, "replace", dying)


def state(path):
    return torch.load(path, weights_only=True)


def argv(demo_data, save_dir):
    return ["--config", str(ROOT / "configs/demo.yaml"), *tiny_overrides(demo_data, save_dir, **EXTRA)]


@pytest.mark.slow
def test_a_crash_at_every_write_point_resumes_consistent(demo_data, tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        writes = count_writes(m)
        straight = train.main(argv(demo_data, tmp_path / "straight"))
    reference = state(f"{straight['run_dir']}/last.pth")["model"]
    checkpoint_writes = [k for k, dst in enumerate(writes) if dst.endswith(".pth")]
    assert len(checkpoint_writes) >= 4
    for k in checkpoint_writes + [checkpoint_writes[-1] + 1]:
        save_dir = tmp_path / f"crash_{k}"
        with monkeypatch.context() as m:
            kill_at(m, k)
            with pytest.raises(SimulatedKill):
                train.main(argv(demo_data, save_dir))
        (run_dir,) = list((save_dir / "tiny").iterdir())
        run = RunDir(run_dir)
        if run.last.is_file() and run.best.is_file():  # at every instant: best is never behind last
            assert state(run.best)["epoch"] >= state(run.last)["monitor"]["best_epoch"]
        done = train.main(["--resume", str(run_dir)])
        assert done["epochs"] == 3
        final = state(run.last)
        assert state(run.best)["epoch"] == final["monitor"]["best_epoch"], k
        assert all(torch.equal(final["model"][key], value) for key, value in reference.items()), k


@pytest.mark.slow
def test_legacy_crash_between_last_and_best_is_repaired(demo_data, tmp_path):
    done = train.main(argv(demo_data, tmp_path))
    run = RunDir(done["run_dir"])
    last = state(run.last)
    run.best.unlink()  # as if killed after last.pth was written, before best.pth (the old order)
    last["monitor"]["best_epoch"] = last["epoch"]
    torch.save(last, run.last)
    assert "restored" in reconcile(run)
    assert state(run.best)["epoch"] == last["epoch"]
    assert reconcile(run) is None


def test_killed_before_the_first_checkpoint_restarts_in_place(demo_data, tmp_path):
    run = RunDir(tmp_path / "tiny" / "early")
    run.path.mkdir(parents=True)
    from utils.config import load_config, save_config

    save_config(load_config(ROOT / "configs/demo.yaml", tiny_overrides(demo_data, tmp_path)), run.config)
    leftover = run.path / ".last.pth.abc123.tmp"
    leftover.write_bytes(b"half a checkpoint")
    done = train.main(["--resume", str(run.path)])
    assert done["run_dir"] == str(run.path) and run.last.is_file() and run.best.is_file()
    assert not leftover.exists()


@pytest.mark.slow
def test_a_run_directory_takes_one_trainer_at_a_time(demo_data, tmp_path, capsys):
    done = train.main(argv(demo_data, tmp_path))
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from utils.run_lock import run_lock\n"
        f"with run_lock(Path({done['run_dir']!r}) / '.lock'):\n    print('locked', flush=True); time.sleep(30)")],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SystemExit) as exit_info:
            train.main(["--resume", done["run_dir"], "trainer.epochs=4"])
        assert exit_info.value.code == 2
        assert f"another training process (pid {holder.pid})" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert train.main(["--resume", done["run_dir"], "trainer.epochs=4"])["epochs"] == 4  # free again


def test_messages_name_only_files_that_exist(tmp_path, capsys):
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(SystemExit):
        train.main(["--resume", str(tmp_path / "empty_run")])
    err = capsys.readouterr().err
    assert "holds no last.pth" in err and os.path.join("empty_run", "last.pth") not in err
