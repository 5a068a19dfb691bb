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


def fake_checkpoints(run: RunDir, last_epoch: int, best_epoch: int, best_held: int | None) -> None:
    """last.pth at `last_epoch` naming `best_epoch` as the best; best.pth at `best_held` (None: absent)."""
    from trainer.checkpoint import CONFIG_SECTIONS, save_checkpoint

    run.path.mkdir(parents=True, exist_ok=True)
    common = {"model": {}, "config": {s: {} for s in CONFIG_SECTIONS}, "class_names": ["a"]}
    save_checkpoint({**common, "epoch": last_epoch, "monitor": {"best_epoch": best_epoch}, "tag": "last"}, run.last)
    if best_held is not None:
        save_checkpoint({**common, "epoch": best_held, "monitor": {"best_epoch": best_held}, "tag": "best"}, run.best)


@pytest.mark.parametrize("last_epoch, best_epoch, best_held", [(3, 0, None), (3, 2, 2), (3, 2, 3)])
def test_reconcile_leaves_agreeing_checkpoints_alone(tmp_path, last_epoch, best_epoch, best_held):
    run = RunDir(tmp_path / "run")
    fake_checkpoints(run, last_epoch, best_epoch, best_held)
    assert reconcile(run) is None
    assert run.best.is_file() == (best_held is not None)
    assert best_held is None or state(run.best)["tag"] == "best"


@pytest.mark.parametrize("best_held", [None, 1])
def test_reconcile_restores_the_last_epoch_when_it_was_the_best(tmp_path, best_held):
    run = RunDir(tmp_path / "run")
    fake_checkpoints(run, last_epoch=2 if best_held else 1, best_epoch=2 if best_held else 1, best_held=best_held)
    message = reconcile(run)
    assert message == f"{run.best} restored from {run.last} (epoch {2 if best_held else 1})"
    assert state(run.best)["tag"] == "last" and not run.best.with_suffix(".pth.repair").exists()


def test_reconcile_says_when_the_best_weights_are_lost(tmp_path):
    run = RunDir(tmp_path / "run")
    fake_checkpoints(run, last_epoch=4, best_epoch=3, best_held=2)
    assert reconcile(run) == (f"{run.best} holds epoch 2 but the best epoch was 3; its weights are lost, so "
                              "best.pth stays at the older epoch until a better one is found")
    assert state(run.best)["tag"] == "best"


def test_reconcile_without_last_does_nothing(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    assert reconcile(run) is None and not run.best.exists()


@pytest.mark.parametrize("monitor, ema, key", [
    ("max ema_val_f1", {"w": 1}, "ema"), ("max ema_val_f1", None, "model"), ("max val_f1", {"w": 1}, "model"),
    ("min ema_val_loss", {"w": 1}, "ema"),
])
def test_the_best_weights_are_the_ema_only_when_the_monitor_judged_them(monitor, ema, key):
    from trainer.checkpoint import best_weights_key

    assert best_weights_key({"config": {"trainer": {"monitor": monitor}}, "ema": ema}) == key


class Foreign:
    """An object torch's weights-only loader refuses to unpickle."""


def test_load_checkpoint_refuses_each_kind_of_foreign_file_in_one_line(tmp_path, monkeypatch):
    from trainer.checkpoint import load_checkpoint, save_checkpoint
    from utils.errors import UserError

    def refusal(path) -> str:
        with pytest.raises(UserError) as error:
            load_checkpoint(path)  # by default a run directory means its last.pth
        return str(error.value)

    sections = {s: {} for s in ("data", "augment", "model", "trainer")}
    good = {"model": {}, "config": sections, "class_names": []}
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    save_checkpoint(good, run.best)
    assert torch.load(run.best, weights_only=True)["format"] == 1 and load_checkpoint(run.path, "best")["model"] == {}
    assert refusal(run.path) == f"{run.path}: this run directory holds no last.pth (yet)"
    torch.save({**good, "extra": Foreign()}, tmp_path / "pickled.pth")
    assert refusal(tmp_path / "pickled.pth").startswith(f"{tmp_path / 'pickled.pth'}: not a readable checkpoint (")
    torch.save({"weights": {}}, tmp_path / "other.pth")
    assert refusal(tmp_path / "other.pth") == (f"{tmp_path / 'other.pth'}: not a checkpoint of this framework "
                                               "(needs keys model, config, class_names)")
    torch.save({**good, "config": {"data": {}, "model": {}}}, tmp_path / "partial.pth")
    assert refusal(tmp_path / "partial.pth") == (f"{tmp_path / 'partial.pth'}: its stored config lacks section(s) "
                                                 "augment, trainer")
    torch.save({**good, "config": None}, tmp_path / "none.pth")
    assert refusal(tmp_path / "none.pth").endswith("lacks section(s) data, augment, model, trainer")

    def long_error(*args, **kwargs):
        raise RuntimeError("x" * 300 + "\nsecond line")

    monkeypatch.setattr(torch, "load", long_error)
    assert refusal(run.best) == f"{run.best}: not a readable checkpoint ({'x' * 120})"
