"""tune.py: spaces validated like configs, trials as ordinary runs, pruning, shared storage, killed trials."""
import os
import signal
import subprocess
import sys
import time

import optuna
import pandas as pd
import pytest
import yaml

import tune
from conftest import ROOT, tiny_overrides
from utils.config import load_config
from utils.errors import ConfigError
from experiments.search_space import load_space

SPACE = {"pruner": {"name": "median", "warmup_epochs": 0, "startup_trials": 1}, "sampler": {"seed": 1},
         "params": {"optimizer.lr": {"float": [1.0e-4, 1.0e-2], "log": True},
                    "augment.image_size": {"categorical": [[64, 48], [32, 24]]}}}


def write_space(tmp_path, space=SPACE):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


@pytest.mark.parametrize("params, culprit", [
    ({"optimizer.lrr": {"float": [0.1, 0.2]}}, "params.optimizer.lrr: unknown config key (did you mean: lr?)"),
    ({"optimizer.lr": {"float": [0.2, 0.1]}}, "params.optimizer.lr: needs low < high"),
    ({"optimizer.lr": {"float": [0.0, 0.1], "log": True}}, "low > 0"),
    ({"model.backbone": {"categorical": ["resnet18", "resnett18"]}}, "value 'resnett18' gives an invalid config"),
    ({"trainer.epochs": {"int": [0, 4]}}, "params.trainer.epochs: value 0"),
    ({"optimizer.lr": {"uniform": [0.1, 0.2]}}, "give exactly one of float"),
    ({"optimizer.lr": {"float": [0.1, 0.2], "lag": True}}, "params.optimizer.lr.lag: unknown key"),
])
def test_bad_spaces_are_one_line_errors(tmp_path, params, culprit):
    with pytest.raises(ConfigError) as err:
        load_space(write_space(tmp_path, {"params": params}), ROOT / "configs/demo.yaml", [])
    assert culprit in str(err.value) and "\n" not in str(err.value)


def test_shipped_spaces_are_valid():
    for config, space in (("demo", "demo"), ("swin_b", "swin_b")):
        assert load_space(ROOT / f"configs/search/{space}.yaml", ROOT / f"configs/{config}.yaml", []).params


def test_bad_space_exits_2_before_anything_is_written(tmp_path, capsys):
    space = write_space(tmp_path, {"params": {"optimizer.lrr": {"float": [0.1, 0.2]}}})
    with pytest.raises(SystemExit) as exit_info:
        tune.main(["--config", str(ROOT / "configs/demo.yaml"), "--space", str(space), f"save_dir={tmp_path / 's'}"])
    assert exit_info.value.code == 2 and not (tmp_path / "s").exists()
    assert "optimizer.lrr" in capsys.readouterr().err


def test_a_pruned_run_is_marked_pruned(demo_data, tmp_path):
    from trainer.lifecycle import run_training
    from experiments.search import PruneOnMonitor, TrialPruned
    from utils.run_dir import RunDir

    class AlwaysPrune:
        number = 7

        def __init__(self):
            self.reported = []

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return True

    trial = AlwaysPrune()
    config = load_config(ROOT / "configs/demo.yaml", tiny_overrides(demo_data, tmp_path, **{"trainer.epochs": 3}))
    with pytest.raises(TrialPruned):
        run_training(config, run_dir=RunDir(tmp_path / "trial"), callbacks=[PruneOnMonitor(trial, "val_f1")])
    summary = yaml.safe_load((tmp_path / "trial" / "summary.json").read_text())
    assert summary["status"] == "pruned" and summary["epochs"] == 1 and trial.reported[0][0] == 1


def tune_argv(demo_data, tmp_path, trials=3, **extra):
    overrides = tiny_overrides(demo_data, tmp_path / "saved", **{"trainer.epochs": 2, **extra})
    return ["--config", str(ROOT / "configs/demo.yaml"), "--space", str(write_space(tmp_path)),
            "--trials", str(trials), *overrides]


@pytest.mark.slow
def test_trials_are_ordinary_runs_and_the_best_config_trains(demo_data, tmp_path):
    import inference

    out = tune.main(tune_argv(demo_data, tmp_path))
    root = tmp_path / "saved" / "tiny" / "tune"
    table = pd.read_csv(root / "trials.csv")
    assert len(table) == 3 and set(table["state"]) <= {"complete", "pruned"}
    assert sorted(p.name for p in root.glob("trial_*")) == ["trial_0000", "trial_0001", "trial_0002"]
    best = load_config(root / "best_config.yaml")  # train.py --config takes it as is
    assert best.optimizer.lr == pytest.approx(out["study"].best_params["optimizer.lr"])
    assert (root / "history.png").is_file()
    sub = inference.main(["--ckpt", str(root / f"trial_{out['best_trial']:04d}"), "--out", str(tmp_path / "s.csv")])
    assert len(pd.read_csv(sub)) == 42
    again = tune.main(tune_argv(demo_data, tmp_path, trials=4))  # the same study continues
    assert len(again["trials"]) == 4


def study_trials(tmp_path):
    storage = f"sqlite:///{tmp_path / 'saved' / 'tiny' / 'tune' / 'study.db'}"
    return optuna.load_study(study_name="tiny", storage=storage).get_trials()


@pytest.mark.slow
def test_two_processes_share_one_study(demo_data, tmp_path):
    cmd = [sys.executable, "tune.py", *tune_argv(demo_data, tmp_path, trials=4)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    trials = study_trials(tmp_path)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) >= 4
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    dirs = sorted(p.name for p in (tmp_path / "saved" / "tiny" / "tune").glob("trial_*"))
    assert dirs == [f"trial_{n:04d}" for n in sorted(numbers)]


@pytest.mark.slow
def test_a_killed_trial_is_marked_failed_and_the_study_goes_on(demo_data, tmp_path):
    argv = [*tune_argv(demo_data, tmp_path, trials=2, **{"trainer.epochs": 6}), "--heartbeat", "1"]
    proc = subprocess.Popen([sys.executable, "tune.py", *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    metrics = tmp_path / "saved" / "tiny" / "tune" / "trial_0000" / "metrics.csv"
    deadline = time.time() + 120
    while not metrics.is_file() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(3)  # past the grace period of two heartbeats
    subprocess.run([sys.executable, "tune.py", *argv], cwd=ROOT, check=True, capture_output=True, timeout=600)
    states = {t.number: t.state for t in study_trials(tmp_path)}
    assert states[0] == optuna.trial.TrialState.FAIL
    finished = [n for n, s in states.items() if s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert len(finished) == 2
