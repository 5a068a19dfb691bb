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
from experiments.search_space import load_space
from helpers import ROOT, fails_in_one_line, scaled, tiny_overrides
from utils.config import load_config
from utils.errors import ConfigError, UserError

SPACE = {"pruner": {"name": "median", "warmup_epochs": 0, "startup_trials": 1}, "sampler": {"seed": 1},
         "params": {"optimizer.lr": {"float": [1.0e-4, 1.0e-2], "log": True},
                    "data.age_bounds": {"categorical": [[30, 60], [30, 58]]}}}


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
    from experiments.search import PruneOnMonitor, TrialPruned
    from trainer.lifecycle import run_training
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


def tune_argv(demo_data, tmp_path, trials=3, storage=None, **extra):
    overrides = tiny_overrides(demo_data, tmp_path / "saved", **{"trainer.epochs": 2, **extra})
    return ["--config", str(ROOT / "configs/demo.yaml"), "--space", str(write_space(tmp_path)),
            "--trials", str(trials), *(["--storage", storage] if storage else []), *overrides]


@pytest.mark.slow
def test_trials_are_ordinary_runs_and_the_best_config_trains(demo_data, tmp_path, study_storage):
    import inference

    out = tune.main(tune_argv(demo_data, tmp_path, storage=study_storage))
    root = tmp_path / "saved" / "tiny" / "tune"
    table = pd.read_csv(root / "trials.csv")
    assert len(table) == 3 and set(table["state"]) <= {"complete", "pruned"}
    assert sorted(p.name for p in root.glob("trial_*")) == ["trial_0000", "trial_0001", "trial_0002"]
    best = load_config(root / "best_config.yaml")  # train.py --config takes it as is
    assert best.optimizer.lr == pytest.approx(out["study"].best_params["optimizer.lr"])
    assert (root / "history.png").is_file()
    sub = inference.main(["--ckpt", str(root / f"trial_{out['best_trial']:04d}"), "--out", str(tmp_path / "s.csv")])
    assert len(pd.read_csv(sub)) == 42
    again = tune.main(tune_argv(demo_data, tmp_path, trials=4, storage=study_storage))  # the study continues
    assert len(again["trials"]) == 4 and list(again["trials"]["trial"]) == [0, 1, 2, 3]


def study_trials(tmp_path, storage=None):
    storage = storage or f"sqlite:///{tmp_path / 'saved' / 'tiny' / 'tune' / 'study.db'}"
    return optuna.load_study(study_name="tiny", storage=storage).get_trials()


@pytest.mark.slow
def test_two_processes_share_one_study(demo_data, tmp_path, study_storage):
    cmd = [sys.executable, "tune.py", *tune_argv(demo_data, tmp_path, trials=4, storage=study_storage)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for _ in range(2)]
    outputs = [p.communicate(timeout=scaled(600))[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    trials = study_trials(tmp_path, study_storage)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) >= 4  # none lost; each process may finish one past --trials
    assert len(numbers) <= 5
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    dirs = sorted(p.name for p in (tmp_path / "saved" / "tiny" / "tune").glob("trial_*"))
    assert dirs == [f"trial_{n:04d}" for n in sorted(numbers)]


@pytest.mark.slow
def test_a_killed_trial_is_marked_failed_and_the_study_goes_on(demo_data, tmp_path, study_storage):
    argv = [*tune_argv(demo_data, tmp_path, trials=2, storage=study_storage, **{"trainer.epochs": 6}),
            "--heartbeat", "1"]
    proc = subprocess.Popen([sys.executable, "tune.py", *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    metrics = tmp_path / "saved" / "tiny" / "tune" / "trial_0000" / "metrics.csv"
    deadline = time.time() + 120
    while not metrics.is_file() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(3)  # past the grace period of two heartbeats
    subprocess.run([sys.executable, "tune.py", *argv], cwd=ROOT, check=True, capture_output=True, timeout=scaled(600))
    states = {t.number: t.state for t in study_trials(tmp_path, study_storage)}
    assert states[0] == optuna.trial.TrialState.FAIL
    finished = [n for n, s in states.items() if s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert len(finished) == 2


@pytest.mark.parametrize("flag, value", [("--trials", "0"), ("--trials", "-3"), ("--heartbeat", "0"),
                                         ("--timeout", "0"), ("--timeout", "-5"), ("--timeout", "nan"),
                                         ("--timeout", "inf")])
def test_counts_and_timeouts_at_or_below_zero_are_one_line_before_any_study(tmp_path, capsys, flag, value):
    argv = ["--config", str(ROOT / "configs/demo.yaml"), "--space", str(ROOT / "configs/search/demo.yaml"),
            flag, value, f"save_dir={tmp_path / 's'}"]
    fails_in_one_line(tune.main, argv, capsys, flag, value)
    assert not (tmp_path / "s").exists()


def run_tune_expecting_error(argv, capsys) -> str:
    return fails_in_one_line(tune.main, argv, capsys)


@pytest.mark.parametrize("url, message", [
    ("postgresql+psycopg2://u:secret@127.0.0.1:1/db",
     "database driver 'psycopg2' is not installed; install psycopg2-binary"),
    ("mysql+pymysql://u:secret@127.0.0.1:1/db", "database driver 'pymysql' is not installed; install PyMySQL"),
    ("nosuchdb://x", "not a usable database URL"),
    ("postgresql://u:secret@127.0.0.1:{port}/db", "cannot use the study database"),
])
def test_unusable_storage_is_one_line_without_the_password(demo_data, tmp_path, capsys, url, message):
    from support.postgres_server import free_port

    argv = tune_argv(demo_data, tmp_path, storage=url.format(port=free_port()))
    err = run_tune_expecting_error(argv, capsys)
    assert message in err and "secret" not in err
    assert not list((tmp_path / "saved").rglob("trial_*"))


def test_a_file_that_is_not_a_database_is_one_line(demo_data, tmp_path, capsys):
    bad = tmp_path / "study.db"
    bad.write_bytes(b"not a database at all" * 100)
    err = run_tune_expecting_error(tune_argv(demo_data, tmp_path, storage=f"sqlite:///{bad}"), capsys)
    assert "cannot use the study database (file is not a database)" in err


def test_missing_data_and_shadowed_keys_stop_before_the_study(demo_data, tmp_path, capsys):
    err = run_tune_expecting_error(tune_argv(demo_data, tmp_path, **{"data.train_dir": tmp_path / "nope"}), capsys)
    assert "data.train_dir:" in err and "nope/train.csv not found" in err
    err = run_tune_expecting_error(tune_argv(demo_data, tmp_path, **{"optimizer.lr": 0.1}), capsys)
    assert err.startswith("error: optimizer.lr: given on the command line and searched by")
    assert not (tmp_path / "saved" / "tiny" / "tune" / "study.db").exists()


def test_continuing_a_study_with_the_opposite_direction_is_refused(demo_data, tmp_path, capsys):
    from experiments.search import open_study

    config = load_config(ROOT / "configs/demo.yaml", tiny_overrides(demo_data, tmp_path / "saved"))
    space = load_space(write_space(tmp_path), ROOT / "configs/demo.yaml", [])
    assert open_study(config, space, storage=None, study_name=None, heartbeat=60).direction.name == "MAXIMIZE"
    minimizing = load_config(ROOT / "configs/demo.yaml", tiny_overrides(demo_data, tmp_path / "saved",
                                                               **{"trainer.monitor": "'min val_loss'"}))
    with pytest.raises(ConfigError) as err:
        open_study(minimizing, space, storage=None, study_name=None, heartbeat=60)
    db = tmp_path / "saved" / "tiny" / "tune" / "study.db"
    assert str(err.value) == (f"trainer.monitor 'min val_loss': study 'tiny' in sqlite:///{db} was created to "
                              "maximize; continue it with the same monitor direction, or start a new study "
                              "(--study NAME)")


def test_run_study_refuses_a_monitor_without_validation_but_not_with_folds(demo_data, tmp_path, monkeypatch):
    from experiments import search

    monkeypatch.setattr(search, "run_training", lambda config, **kwargs: ({"best": 0.5, "epochs": 1}, None))
    space = write_space(tmp_path)

    def run(**extra):
        overrides = tiny_overrides(demo_data, tmp_path / "saved", **{"data.val_ratio": 0, **extra})
        return search.run_study(ROOT / "configs/demo.yaml", space, trials=1, timeout=None, storage=None,
                                study_name=None, overrides=overrides)

    with pytest.raises(ConfigError) as err:
        run()
    assert str(err.value) == "tune: trainer.monitor 'max val_f1' needs a validation set (data.val_ratio > 0)"
    assert len(run(**{"data.n_folds": 2, "name": "folds"})["study"].trials) == 1  # a fold validates
    with pytest.raises(ConfigError) as err:
        search.run_study(ROOT / "configs/demo.yaml", space, trials=1, timeout=None, storage=None, study_name=None,
                         overrides=[*tiny_overrides(demo_data, tmp_path / "saved"), "optimizer.lr=0.1"])
    assert str(err.value) == f"optimizer.lr: given on the command line and searched by {space}; drop one of them"


class ScriptedObjective:
    """Stands in for a trial's training: returns or raises what it is told, in order."""

    def __init__(self, outcomes):
        self.outcomes, self.calls = list(outcomes), 0

    def __call__(self, trial):
        outcome = self.outcomes[self.calls]
        self.calls += 1
        if isinstance(outcome, Exception):
            trial.set_user_attr("error", f"{type(outcome).__name__}: {outcome}")
            raise outcome
        return outcome


def test_trials_stop_at_the_count_and_a_min_monitor_minimises(tmp_path):
    from experiments.search import run_trials

    study = optuna.create_study(direction="minimize", storage=f"sqlite:///{tmp_path / 's.db'}")
    objective = ScriptedObjective([0.5, 0.2, 0.9, 0.1])
    reason = run_trials(study, objective, trials=3, timeout=None)
    assert objective.calls == 3 and "holds 3 finished or running trials" in reason
    assert study.best_value == 0.2  # minimised: the smallest value is the best
    assert "--trials 3" in run_trials(study, objective, trials=3, timeout=None) and objective.calls == 3


def test_repeated_failures_stop_the_search_with_the_reason(tmp_path):
    from experiments.search import run_trials

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    objective = ScriptedObjective([0.5, RuntimeError("CUDA out of memory"), RuntimeError("CUDA out of memory"),
                                   RuntimeError("CUDA out of memory"), 0.7])
    with pytest.raises(UserError, match=r"3 trials in a row failed; the last \(trial 3\): RuntimeError: CUDA out"):
        run_trials(study, objective, trials=10, timeout=None, max_failures=3)
    assert objective.calls == 4


def test_timeout_stops_starting_trials(tmp_path):
    from experiments.search import run_trials

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    assert run_trials(study, ScriptedObjective([1.0]), trials=10, timeout=0) == "--timeout 0 s reached"
    assert not study.trials


def test_a_trial_running_past_the_timeout_stops_at_its_next_epoch_boundary():
    import time

    from experiments.search import PruneOnMonitor, TrialPruned, run_trials

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    PruneOnMonitor(trial, "val_f1", deadline=time.time() + 600)(None, 1, {"val_f1": 0.3}, None, True)
    with pytest.raises(TrialPruned, match=r"stopped after epoch 2: the search's --timeout has passed"):
        PruneOnMonitor(trial, "val_f1", deadline=time.time() - 1)(None, 2, {"val_f1": 0.4}, None, True)
    assert trial.user_attrs["stopped"] == "timeout"
    assert study.trials[0].intermediate_values == {1: 0.3, 2: 0.4}  # the epoch it stopped at still counts

    objective = ScriptedObjective([1.0])
    before = time.time()
    run_trials(optuna.create_study(), objective, trials=1, timeout=50)
    assert before + 50 <= objective.deadline <= time.time() + 50  # what its trials' callbacks stop at


def test_search_plots_name_the_monitor_warn_on_few_trials_and_show_every_trial(tmp_path, caplog):
    import matplotlib

    matplotlib.use("Agg")
    from experiments.search import save_plots, search_plot

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("optimizer.lr", 1e-4, 1e-1, log=True)
                   * t.suggest_int("trainer.epochs", 2, 9), n_trials=4)
    history = search_plot(study, "history", "val_f1")
    assert history.get_ylabel() == "val_f1"
    importances = search_plot(study, "importances", "val_f1")
    assert "from 4 complete trials: too few" in importances.get_title()
    assert "parameter importances from 4 complete trials" in caplog.text
    parallel = search_plot(study, "parallel_coordinates", "val_f1")
    assert parallel.figure.get_size_inches()[0] >= 8
    assert all(t.get_rotation() == 25 for t in parallel.get_xticklabels())
    lines = [c for c in parallel.collections if c.get_cmap().name == "viridis"]
    assert len(lines) == 1 and len(lines[0].get_paths()) == 4  # every trial drawn, none faded to white
    assert [p.name for p in save_plots(study, tmp_path, "val_f1")] == ["history.png", "importances.png",
                                                                       "parallel_coordinates.png"]


@pytest.mark.parametrize("seed, culprit", [
    ({"optimizer.wd": 0.1}, "seed_trials.0.optimizer.wd: not a searched parameter"),
    ({"optimizer.lr": 0.5}, "seed_trials.0.optimizer.lr: value 0.5 is outside its distribution"),
    ({"data.age_bounds": [30, 59]}, "seed_trials.0.data.age_bounds: value [30, 59] is outside"),
    ({"trainer.epochs": 3}, "seed_trials.0.trainer.epochs: value 3 is outside"),  # off the step
    ({"trainer.epochs": 2.0}, "seed_trials.0.trainer.epochs: value 2.0 is outside"),
])
def test_seed_trials_must_lie_in_the_space(tmp_path, seed, culprit):
    space = {**SPACE, "params": {**SPACE["params"], "trainer.epochs": {"int": [2, 6], "step": 2}},
             "seed_trials": [seed]}
    with pytest.raises(ConfigError) as err:
        load_space(write_space(tmp_path, space), ROOT / "configs/demo.yaml", [])
    assert culprit in str(err.value) and "space.yaml" in str(err.value)


def test_seed_trials_run_first_and_only_once(tmp_path):
    from experiments.search import enqueue_seeds, suggest

    seeds = [{"optimizer.lr": 3.0e-3, "data.age_bounds": [30, 58]}, {"optimizer.lr": 1.0e-3}]
    space = load_space(write_space(tmp_path, {**SPACE, "seed_trials": seeds}), ROOT / "configs/demo.yaml", [])
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    enqueue_seeds(study, space)
    enqueue_seeds(study, space)  # a second worker joining the study
    picked = []
    for _ in range(3):
        trial = study.ask()
        picked.append(suggest(trial, space))
        study.tell(trial, 0.5)
    assert picked[0] == {"optimizer.lr": 3.0e-3, "data.age_bounds": [30, 58]}
    assert picked[1]["optimizer.lr"] == 1.0e-3 and picked[1]["data.age_bounds"] in ([30, 60], [30, 58])
    assert picked[2]["optimizer.lr"] not in (3.0e-3, 1.0e-3)  # sampled: the seeds were queued once
    enqueue_seeds(study, space)  # a rerun of the finished study queues nothing again
    assert len(study.get_trials(states=(optuna.trial.TrialState.WAITING,))) == 0


@pytest.mark.parametrize("change, message", [
    ({"pruner": {"name": "asha"}}, "space.yaml: pruner.name: Input should be 'median', 'hyperband' or 'none'"),
    ({"sampler": {"name": "tpe", "seeds": 1}}, "space.yaml: sampler.seeds: unknown key"),
    ({"params": []}, "space.yaml: params: a mapping of config keys to distributions is required"),
    ({"params": ["optimizer.lr"]}, "space.yaml: params: a mapping of config keys to distributions is required"),
    ({"pruner": {"name": "median", "warmup": 2}}, "space.yaml: pruner.warmup: unknown key"),
    ({"params": {"optimizer.lr": {"float": [0.1, 0.2], "lag": True}}},
     "space.yaml: params.optimizer.lr.lag: unknown key"),
    ({"params": {"optimizer.lr": {"float": ["a", 0.1]}}},
     "space.yaml: params.optimizer.lr.float.0: Input should be a valid number, unable to parse string as a number"),
    ({"seed_trials": [{"optimizer.wd": 0.1}]},
     "space.yaml: seed_trials.0.optimizer.wd: not a searched parameter (params: optimizer.lr, data.age_bounds)"),
    ({"params": {"trainer.epochs": {"categorical": [2, 0]}}},
     "space.yaml: params.trainer.epochs: value 0 gives an invalid config "
     "(trainer.epochs: Input should be greater than 0 (got 0))"),
    ({"params": {"optimizer.lr": {"float": [0.1, 0.1]}}},
     "space.yaml: params.optimizer.lr: needs low < high, got [0.1, 0.1]"),
    ({"params": {"optimizer.lr": {"float": [0.0, 0.1], "log": True}}},
     "space.yaml: params.optimizer.lr: needs low < high and low > 0 (log), got [0.0, 0.1]"),
    ({"params": {"trainer.epochs": {"int": [2, 6], "step": 0}}},
     "space.yaml: params.trainer.epochs.step: Input should be greater than 0"),
])
def test_space_file_errors_are_one_exact_line(tmp_path, change, message):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({**SPACE, **change}, sort_keys=False))
    with pytest.raises(ConfigError) as err:
        load_space(path, ROOT / "configs/demo.yaml", [])
    assert str(err.value) == f"{tmp_path / 'space.yaml'}{message.removeprefix('space.yaml')}"


def test_int_seeds_must_sit_on_the_step_grid_from_low(tmp_path):
    space = {**SPACE, "params": {"trainer.epochs": {"int": [3, 11], "step": 4}}}
    loaded = load_space(write_space(tmp_path, space), ROOT / "configs/demo.yaml", [])
    assert [e for e in range(1, 14) if loaded.admits("trainer.epochs", e)] == [3, 7, 11]


def test_trial_values_become_overrides_that_parse_back():
    from experiments.search_space import overrides_for
    from utils.config import load_config

    values = {"augment.image_size": [128, 96], "model.backbone": "resnet10t", "optimizer.lr": 0.003,
              "augment.train": [{"name": "HorizontalFlip", "args": {"p": 0.5}}]}
    out = overrides_for(values)
    assert out == ["augment.image_size=[128, 96]", "model.backbone=resnet10t", "optimizer.lr=0.003",
                   "augment.train=[{args: {p: 0.5}, name: HorizontalFlip}]"]  # one line each
    config = load_config(ROOT / "configs/demo.yaml", out)
    assert list(config.augment.image_size) == [128, 96] and config.augment.train[0].args == {"p": 0.5}


def recipe_with(tmp_path, **data) -> str:
    """configs/demo.yaml with some `data` keys changed, as a file of its own."""
    raw = yaml.safe_load((ROOT / "configs/demo.yaml").read_text())
    raw["data"].update(data)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_space_values_are_checked_against_the_base_config(tmp_path):
    space = write_space(tmp_path, {"params": {"data.fold": {"int": [0, 4]}}})
    assert load_space(space, ROOT / "configs/demo.yaml", [])  # no folds in the demo recipe: any fold is fine
    (tmp_path / "my recipes").mkdir()  # a path with a space: the message still starts after it
    with pytest.raises(ConfigError) as err:
        load_space(space, recipe_with(tmp_path / "my recipes", n_folds=3), [])
    assert str(err.value) == (f"{space}: params.data.fold: value 4 gives an invalid config (data: need n_folds >= 2 "
                              "and 0 <= fold < n_folds, got n_folds=3, fold=4)")
    assert load_space(write_space(tmp_path, {"params": {"optimizer.lr": {"float": [0.1, 0.2]}}}), None, [])


def test_each_value_is_checked_against_the_base_not_the_previous_value(tmp_path):
    space = tmp_path / "space.yaml"  # n_folds first: its last value (2) must not stay for data.fold's check
    space.write_text("params:\n  data.n_folds: {categorical: [5, 2]}\n  data.fold: {int: [0, 3]}\n")
    loaded = load_space(space, recipe_with(tmp_path, n_folds=5), [])
    assert list(loaded.params) == ["data.n_folds", "data.fold"]


class FakeTraining:
    """Stands in for `run_training` inside a trial: records its arguments, then returns or raises."""

    def __init__(self, outcome):
        self.outcome, self.calls = outcome, []

    def __call__(self, config, *, overrides, run_dir, hparams, callbacks):
        self.calls.append({"config": config, "overrides": overrides, "run_dir": run_dir, "hparams": hparams,
                           "callbacks": callbacks})
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome, None


def objective_with(tmp_path, monkeypatch, outcome):
    from experiments import search

    space = load_space(write_space(tmp_path, {"params": {"optimizer.lr": {"categorical": [0.002]}}}),
                       ROOT / "configs/demo.yaml", [])
    fake = FakeTraining(outcome)
    monkeypatch.setattr(search, "run_training", fake)
    objective = search.Objective(ROOT / "configs/demo.yaml", ["trainer.monitor=min val_loss"], space, tmp_path / "tune",
                                 deadline=123.0)
    study = optuna.create_study(direction="minimize")
    study.enqueue_trial({"optimizer.lr": 0.002})
    return objective, study, fake


def test_a_trial_trains_its_values_as_an_ordinary_run_and_reports_its_best(tmp_path, monkeypatch):
    from experiments.search import PruneOnMonitor

    objective, study, fake = objective_with(tmp_path, monkeypatch, {"best": 0.25, "epochs": 7})
    study.optimize(objective, n_trials=1)
    (call,) = fake.calls
    assert call["overrides"] == ["trainer.monitor=min val_loss", "optimizer.lr=0.002"]
    assert call["config"].optimizer.lr == 0.002 and call["hparams"] == {"optimizer.lr": 0.002}
    assert call["config"].to_dict() == load_config(ROOT / "configs/demo.yaml", call["overrides"]).to_dict()
    assert call["run_dir"].path == tmp_path / "tune" / "trial_0000"
    (callback,) = call["callbacks"]
    assert isinstance(callback, PruneOnMonitor) and (callback.metric, callback.deadline) == ("val_loss", 123.0)
    assert callback.trial.number == 0
    trial = study.trials[0]
    assert trial.value == 0.25 and trial.user_attrs["epochs"] == 7 and 0 <= trial.user_attrs["seconds"] < 60
    assert trial.user_attrs["run_dir"] == str(tmp_path / "tune" / "trial_0000")


def test_a_failed_trial_records_its_reason_and_a_stopped_one_its_time(tmp_path, monkeypatch):
    from experiments.search import TrialPruned

    objective, study, _ = objective_with(tmp_path, monkeypatch, RuntimeError("CUDA out of memory\nmore lines"))
    study.optimize(objective, n_trials=1, catch=(Exception,))
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.FAIL
    assert trial.user_attrs["error"] == "RuntimeError: CUDA out of memory" and "seconds" not in trial.user_attrs
    objective, study, _ = objective_with(tmp_path, monkeypatch, ValueError("x" * 600))
    study.optimize(objective, n_trials=1, catch=(Exception,))
    assert study.trials[0].user_attrs["error"] == "ValueError: " + "x" * 488  # 500 characters at most
    objective, study, _ = objective_with(tmp_path, monkeypatch, TrialPruned("pruned at epoch 2"))
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED and 0 <= trial.user_attrs["seconds"] < 60
    assert "error" not in trial.user_attrs and "epochs" not in trial.user_attrs


def finished_trial(value, state, lr, run_dir, **attrs):
    dist = optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    return optuna.trial.create_trial(state=state, value=value, params={"optimizer.lr": lr},
                                     distributions={"optimizer.lr": dist},
                                     user_attrs={"run_dir": str(run_dir), **attrs},
                                     intermediate_values={1: 0.9, 2: 0.7, 3: 0.8})


def test_trials_csv_and_the_best_config_of_a_minimised_study(tmp_path):
    from experiments.search import write_outputs

    runs = [tmp_path / f"trial_{k:04d}" for k in range(3)]
    for k, run in enumerate(runs):
        run.mkdir()
        (run / "config.yaml").write_text(f"name: trial{k}\n")
    study = optuna.create_study(direction="minimize")
    done = optuna.trial.TrialState.COMPLETE
    study.add_trial(finished_trial(0.4, done, 1e-3, runs[0], epochs=5, seconds=12.345))
    study.add_trial(finished_trial(0.2, done, 3e-3, runs[1], epochs=4, seconds=9.0))
    study.add_trial(finished_trial(None, optuna.trial.TrialState.PRUNED, 5e-3, runs[2]))
    out = write_outputs(study, tmp_path, target="val_loss")
    table = pd.read_csv(tmp_path / "trials.csv")
    assert list(table.columns) == ["trial", "state", "value", "epochs", "seconds", "optimizer.lr", "run_dir"]
    assert table["state"].tolist() == ["complete", "complete", "pruned"]
    assert table["epochs"].tolist() == [5, 4, 3]  # a pruned trial: the last epoch it reported
    assert table["seconds"].tolist()[:2] == [12.3, 9.0] and table["optimizer.lr"].tolist() == [1e-3, 3e-3, 5e-3]
    assert table["run_dir"].tolist() == [str(r) for r in runs]
    assert (out["best_trial"], out["best_value"], out["best_config"]) == (1, 0.2, tmp_path / "best_config.yaml")
    assert (tmp_path / "best_config.yaml").read_text() == "name: trial1\n"
    assert out["trials"].equals(table.astype(out["trials"].dtypes)) and list(table.columns)[0] == "trial"
    assert [p.name for p in out["plots"]] == ["history.png", "importances.png", "parallel_coordinates.png"]
    assert not list(tmp_path.glob("*.tmp"))


def test_no_best_config_without_a_complete_trial(tmp_path, monkeypatch):
    from experiments import search

    targets = []
    monkeypatch.setattr(search, "save_plots", lambda study, root, target: targets.append(target) or [])
    study = optuna.create_study()
    study.add_trial(finished_trial(None, optuna.trial.TrialState.PRUNED, 5e-3, tmp_path / "trial_0000"))
    out = search.write_outputs(study, tmp_path)
    assert targets == ["Objective Value"] and out["plots"] == []  # Optuna's own axis title by default
    assert "best_trial" not in out and not (tmp_path / "best_config.yaml").exists()
    assert pd.read_csv(tmp_path / "trials.csv")["state"].tolist() == ["pruned"]


@pytest.mark.parametrize("pruner, expected", [
    ({"name": "median", "warmup_epochs": 6, "startup_trials": 3},
     ("MedianPruner", {"_n_startup_trials": 3, "_n_warmup_steps": 6})),
    ({"name": "hyperband", "warmup_epochs": 3}, ("HyperbandPruner", {"_min_resource": 3, "_max_resource": 20})),
    ({"name": "hyperband", "warmup_epochs": 0}, ("HyperbandPruner", {"_min_resource": 1, "_max_resource": 20})),
    ({"name": "none"}, ("NopPruner", {})),
])
def test_the_pruner_is_built_from_the_space(tmp_path, pruner, expected):
    from experiments.search import make_pruner

    space = load_space(write_space(tmp_path, {**SPACE, "pruner": pruner}), ROOT / "configs/demo.yaml", [])
    built = make_pruner(space, max_epochs=20)
    assert (type(built).__name__, {k: getattr(built, k) for k in expected[1]}) == expected


def test_failures_from_the_first_trial_on_count_toward_the_stop(tmp_path):
    from experiments.search import run_trials

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    objective = ScriptedObjective([RuntimeError("bad data"), RuntimeError("bad data"), 0.5])
    with pytest.raises(UserError, match=r"2 trials in a row failed; the last \(trial 1\): RuntimeError: bad data"):
        run_trials(study, objective, trials=10, timeout=None, max_failures=2)
    assert objective.calls == 2


@pytest.mark.parametrize("name, kind", [("random", "RandomSampler"), ("tpe", "TPESampler")])
def test_the_sampler_is_the_named_one_and_its_seed_repeats_the_draws(tmp_path, name, kind):
    from experiments.search import make_sampler

    space = load_space(write_space(tmp_path, {**SPACE, "sampler": {"name": name, "seed": 5}}),
                       ROOT / "configs/demo.yaml", [])

    def first_draws():
        study = optuna.create_study(sampler=make_sampler(space))
        study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=12)
        return [t.params["x"] for t in study.trials]

    assert type(make_sampler(space)).__name__ == kind and first_draws() == first_draws()


def test_suggested_values_are_stored_as_optuna_keeps_them(tmp_path):
    from experiments.search import suggest

    space = {**SPACE, "params": {**SPACE["params"], "model.backbone": {"categorical": ["resnet10t", "resnet18"]},
                                 "trainer.epochs": {"int": [2, 8], "step": 2},
                                 "data.batch_size": {"int": [8, 64], "log": True}}}
    loaded = load_space(write_space(tmp_path, space), ROOT / "configs/demo.yaml", [])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = []
    for _ in range(12):
        trial = study.ask()
        seen.append(suggest(trial, loaded))
        study.tell(trial, 0.5)
    stored = study.trials[0]
    assert set(stored.params) == set(loaded.params) == set(seen[0])
    assert isinstance(stored.params["data.age_bounds"], str)  # a list travels as JSON text
    assert stored.distributions["optimizer.lr"].log and stored.distributions["trainer.epochs"].step == 2
    assert stored.distributions["data.batch_size"].log and not stored.distributions["trainer.epochs"].log
    assert {tuple(v["data.age_bounds"]) for v in seen} == {(30, 60), (30, 58)}
    assert {v["model.backbone"] for v in seen} == {"resnet10t", "resnet18"}


@pytest.mark.parametrize("monitor, best_lr", [("max val_f1", 8e-3), ("min val_loss", 1e-3)])
def test_run_study_trains_seeds_first_writes_the_best_and_a_rerun_continues(demo_data, tmp_path, monkeypatch,
                                                                            caplog, monitor, best_lr):
    from experiments import search

    def fake_training(config, *, overrides, run_dir, hparams, callbacks):
        run_dir.path.mkdir(parents=True)
        run_dir.config.write_text(yaml.safe_dump({"optimizer": {"lr": hparams["optimizer.lr"]}}))
        return {"best": hparams["optimizer.lr"], "epochs": 1}, None

    monkeypatch.setattr(search, "run_training", fake_training)
    seeds = [{"optimizer.lr": 8e-3}, {"optimizer.lr": 1e-3}]
    space = write_space(tmp_path, {**SPACE, "params": {"optimizer.lr": {"float": [1e-3, 8e-3], "log": True}},
                                   "seed_trials": seeds})
    overrides = tiny_overrides(demo_data, tmp_path / "saved", **{"trainer.monitor": f"'{monitor}'"})

    def run(trials):
        return search.run_study(ROOT / "configs/demo.yaml", space, trials=trials, timeout=None, storage=None,
                                study_name=None, overrides=overrides)

    caplog.set_level("INFO")
    out = run(3)
    root = tmp_path / "saved" / "tiny" / "tune"
    assert [t.params["optimizer.lr"] for t in out["study"].trials[:2]] == [8e-3, 1e-3]  # the seeds, in order
    assert out["study"].direction.name.lower() == monitor.split()[0] + "imize"
    assert out["best_value"] == best_lr and out["best_config"] == root / "best_config.yaml"
    assert yaml.safe_load((root / "best_config.yaml").read_text()) == {"optimizer": {"lr": best_lr}}
    assert len(pd.read_csv(root / "trials.csv")) == 3 and (root / "study.db").is_file()
    assert f"study tiny: 0 of 3 trials finished; storage sqlite:///{root / 'study.db'}" in caplog.text
    assert "tune: stopped starting trials: the study holds 3 finished or running trials (--trials 3)" in caplog.text
    assert len(run(3)["study"].trials) == 3  # finished: nothing more to run
    assert len(run(4)["study"].trials) == 4  # the same study goes on


def test_open_study_sets_heartbeats_engine_sampler_and_pruner(demo_data, tmp_path):
    from experiments.search import open_study
    from experiments.storage import engine_kwargs

    config = load_config(ROOT / "configs/demo.yaml", tiny_overrides(demo_data, tmp_path, **{"trainer.epochs": 9}))
    space = load_space(write_space(tmp_path, {**SPACE, "pruner": {"name": "hyperband", "warmup_epochs": 2},
                                              "sampler": {"name": "random", "seed": 4}}), None, [])
    study = open_study(config, space, storage=None, study_name=None, heartbeat=30)
    backend = study._storage._backend
    assert (study._storage.get_heartbeat_interval(), backend.grace_period) == (30, 60)
    assert backend.engine_kwargs == engine_kwargs(backend.url) and backend.engine_kwargs
    assert type(study.sampler).__name__ == "RandomSampler" and study.study_name == "tiny"
    assert (type(study.pruner).__name__, study.pruner._min_resource, study.pruner._max_resource) == (
        "HyperbandPruner", 2, 9)


def test_a_study_storage_that_keeps_failing_is_one_line_naming_it(demo_data, tmp_path, monkeypatch):
    import sqlalchemy

    from experiments import search, storage

    def broken(**kwargs):
        raise sqlalchemy.exc.OperationalError("CREATE TABLE", {}, Exception("database is locked"))

    monkeypatch.setattr(search.optuna, "create_study", broken)
    monkeypatch.setattr(storage.time, "sleep", lambda s: None)
    config = load_config(ROOT / "configs/demo.yaml", tiny_overrides(demo_data, tmp_path))
    space = load_space(write_space(tmp_path), None, [])
    with pytest.raises(UserError) as err:
        search.open_study(config, space, storage=None, study_name=None, heartbeat=30)
    assert str(err.value) == (f"--storage sqlite:///{tmp_path / 'tiny' / 'tune' / 'study.db'}: cannot open the "
                              "study (database is locked)")


def test_a_trial_that_failed_before_its_first_epoch_has_a_plain_row():
    from experiments.search import trials_table

    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, value=None))
    (row,) = trials_table(study).to_dict("records")
    assert row == {"trial": 0, "state": "fail", "value": None, "epochs": 0, "seconds": 0.0, "run_dir": ""}


def test_plots_are_laid_out_saved_at_100_dpi_closed_and_skips_are_named(tmp_path, caplog):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.collections import LineCollection
    from PIL import Image

    from experiments.search import MIN_IMPORTANCE_TRIALS, save_plots, search_plot

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("a", 0, 1) + t.suggest_float("b", 0, 1) + t.suggest_int("c", 1, 3)
                   + t.suggest_float("d", 0, 1) + t.suggest_float("e", 0, 1) + t.suggest_float("f", 0, 1),
                   n_trials=MIN_IMPORTANCE_TRIALS)
    parallel = search_plot(study, "parallel_coordinates", "val_f1")
    labels = parallel.get_xticklabels()
    assert tuple(parallel.figure.get_size_inches()) == (max(8.0, 1.6 * len(labels)), 5.0) and len(labels) == 7
    assert all((t.get_rotation(), t.get_horizontalalignment()) == (25, "right") for t in labels)
    (lines,) = [c for c in parallel.collections if isinstance(c, LineCollection)]
    assert lines.get_cmap().name == "viridis" and set(lines.get_linewidths()) == {1.6}
    assert lines.colorbar is not None and lines.colorbar.cmap.name == "viridis"  # the colour key follows
    enough = search_plot(study, "importances", "val_f1")
    assert "too few" not in enough.get_title()  # 10 complete trials are enough
    pyplot.close("all")
    caplog.set_level("INFO")
    paths = save_plots(study, tmp_path, "val_f1")
    assert [Image.open(p).info["dpi"][0] for p in paths] == pytest.approx([100, 100, 100], abs=0.1)
    assert pyplot.get_fignums() == []  # every figure closed after saving


def test_a_plot_that_cannot_be_drawn_is_skipped_with_its_reason(tmp_path, caplog, monkeypatch):
    from experiments import search

    def picky(study, name, target):
        if name == "importances":
            raise ValueError("needs two complete trials\nmore")
        if name == "parallel_coordinates":
            raise ZeroDivisionError()
        return search_axes(target)

    def search_axes(target):
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot

        return pyplot.subplots()[1]

    monkeypatch.setattr(search, "search_plot", picky)
    caplog.set_level("INFO")
    assert [p.name for p in search.save_plots(optuna.create_study(), tmp_path, "val_f1")] == ["history.png"]
    assert "plot importances skipped (needs two complete trials)" in caplog.text
    assert "plot parallel_coordinates skipped (ZeroDivisionError)" in caplog.text


def test_a_pruned_trial_says_which_epoch():
    from experiments.search import PruneOnMonitor, TrialPruned

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=0.5))
    trial = study.ask()
    with pytest.raises(TrialPruned, match=r"^trial 0 pruned after epoch 3$"):
        PruneOnMonitor(trial, "val_f1")(None, 3, {"val_f1": 0.1}, None, False)
