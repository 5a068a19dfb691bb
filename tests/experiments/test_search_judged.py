"""tune.py's last word (experiments/search.py `judge_best`): does the best trial beat where the search started,
beyond the people bootstrap?"""
from __future__ import annotations

import numpy as np
import optuna

from experiments.search import judge_best
from helpers import make_run, noisy, photos


def trial(value, run_dir, seeded=False):
    dist = optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    return optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=value, params={"optimizer.lr": 1e-3},
                                     distributions={"optimizer.lr": dist}, user_attrs={"run_dir": str(run_dir)},
                                     system_attrs={"fixed_params": {"optimizer.lr": 1e-3}} if seeded else {})


def study_of(tmp_path, accuracies, seeded, direction="maximize"):
    paths, labels = photos(120)
    study = optuna.create_study(direction=direction)
    for k, (acc, seed_trial) in enumerate(zip(accuracies, seeded)):
        run = make_run(tmp_path / f"trial_{k:04d}", paths, labels, noisy(labels, acc, k))
        study.add_trial(trial(acc, run, seed_trial))
    return study


def test_a_clearly_better_trial_is_judged_better_than_the_best_seed_recipe(tmp_path):
    line = judge_best(study_of(tmp_path, [0.3, 0.45, 0.9], [True, True, False]))
    assert line.startswith("judged: best trial 2 against the seed recipe (trial 1): better: +")


def test_a_trial_inside_the_noise_is_not_called_better(tmp_path):
    line = judge_best(study_of(tmp_path, [0.6, 0.61], [True, False]))
    assert "against the seed recipe (trial 0): no difference shown" in line


def test_without_seed_trials_the_first_trial_is_the_start_and_a_best_start_says_so(tmp_path):
    assert "against the first trial (trial 0)" in judge_best(study_of(tmp_path / "a", [0.3, 0.9], [False, False]))
    line = judge_best(study_of(tmp_path / "b", [0.9, 0.3], [True, False]))
    assert line == "judged: the best trial is the seed recipe (trial 0); the search found nothing that scored higher"


def test_a_trial_without_predictions_is_explained_not_raised(tmp_path):
    study = study_of(tmp_path, [0.3, 0.9], [True, False])
    (tmp_path / "trial_0001" / "val_predictions.csv").unlink()
    line = judge_best(study)
    assert line.startswith("judged: cannot compare trial 1 with the seed recipe (trial 0): ")
    assert "no val_predictions.csv" in line
    assert judge_best(optuna.create_study()) is None
    assert np.isfinite(study.best_value)
