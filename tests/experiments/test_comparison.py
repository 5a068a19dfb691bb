"""Comparing runs (experiments/comparison.py, tools/compare.py): verdicts, pairing, repeated runs, refusals."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from experiments.comparison import compare_runs, config_differences, load_side, people_needed, verdict_text
from helpers import fails_in_one_line, make_run, noisy, one_hot, photos
from tools import compare
from utils.errors import UserError
from utils.predictions import predictions_frame, read_predictions
from utils.run_dir import RunDir


def test_a_much_better_run_is_better_and_a_copy_shows_no_difference(tmp_path):
    paths, labels = photos(150)
    weak = make_run(tmp_path / "weak", paths, labels, noisy(labels, 0.4, 1))
    strong = make_run(tmp_path / "strong", paths, labels, noisy(labels, 0.8, 2), seed=43)
    same = make_run(tmp_path / "same", paths, labels, noisy(labels, 0.4, 1))
    better, unchanged = compare_runs([weak, strong, same], n_resamples=500)
    assert better["verdict"] == "better" and better["ci_low"] > 0 and better["p_better"] > 0.99
    assert better["text"].startswith("better: +0.")
    assert better["differs"] == [["seed", 42, 43]]
    assert unchanged["verdict"] == "no difference shown" and unchanged["delta"] == 0
    assert unchanged["ci_low"] == unchanged["ci_high"] == 0 and unchanged["differs"] == []
    worse = compare_runs([strong, weak], n_resamples=500)[0]
    assert worse["verdict"] == "worse" and worse["ci_high"] < 0 and worse["p_better"] < 0.01


def test_point_estimates_are_the_runs_macro_f1_and_the_tasks_follow(tmp_path):
    from sklearn.metrics import f1_score

    from utils.labels import split_classes

    paths, labels = photos(60, seed=4)
    a, b = noisy(labels, 0.5, 5), noisy(labels, 0.6, 6)
    result = compare_runs([make_run(tmp_path / "a", paths, labels, a), make_run(tmp_path / "b", paths, labels, b)],
                          n_resamples=200)[0]
    assert result["a"] == pytest.approx(f1_score(labels, a, average="macro"))
    assert result["delta"] == pytest.approx(f1_score(labels, b, average="macro") - f1_score(labels, a, average="macro"))
    gender_a = f1_score(split_classes(labels)[1], split_classes(a)[1], average="macro")
    assert result["tasks"]["gender"]["a"] == pytest.approx(gender_a)
    moved = [abs(c["b"] - c["a"]) for c in result["classes"]]
    assert moved == sorted(moved, reverse=True) and len(moved) == 3


def test_the_seed_of_the_bootstrap_makes_it_repeatable(tmp_path):
    paths, labels = photos(40)
    runs = [make_run(tmp_path / n, paths, labels, noisy(labels, acc, s)) for n, acc, s in (("a", .5, 1), ("b", .55, 2))]
    first, again = (compare_runs(runs, n_resamples=300, seed=9)[0] for _ in range(2))
    other = compare_runs(runs, n_resamples=300, seed=10)[0]
    assert (first["ci_low"], first["ci_high"]) == (again["ci_low"], again["ci_high"])
    assert (first["ci_low"], first["ci_high"]) != (other["ci_low"], other["ci_high"])


def test_runs_on_other_people_are_refused_in_one_line_unless_unpaired(tmp_path, capsys):
    paths, labels = photos(50)
    other_paths, other_labels = photos(50, offset=1000)
    a = make_run(tmp_path / "a", paths, labels, noisy(labels, 0.5, 1))
    b = make_run(tmp_path / "b", other_paths, other_labels, noisy(other_labels, 0.5, 2))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    line = fails_in_one_line(compare.main, [str(a), str(b)], capsys, str(a), str(b), "different people",
                             "--unpaired")
    assert "0 photos shared" in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written
    result = compare.main([str(a), str(b), "--unpaired", "--resamples", "300"])[0]
    assert result["paired"] is False and result["people"] == [50, 50]
    assert "UNPAIRED" in capsys.readouterr().out


@pytest.mark.parametrize("argv, expected", [
    (["{a}"], "at least two runs"),
    (["{a}", "{missing}"], "no such run directory"),
    (["{a}", "{empty}"], "no val_predictions.csv"),
    (["{a}", "{a}", "--resamples", "10"], "--resamples 10"),
])
def test_bad_arguments_are_one_line(tmp_path, capsys, argv, expected):
    paths, labels = photos(10)
    names = {"a": make_run(tmp_path / "a", paths, labels, labels), "missing": tmp_path / "nope",
             "empty": tmp_path / "empty"}
    (tmp_path / "empty").mkdir()
    fails_in_one_line(compare.main, [a.format(**names) for a in argv], capsys, expected)


def test_a_damaged_predictions_file_names_its_line(tmp_path, capsys):
    paths, labels = photos(10)
    run = make_run(tmp_path / "a", paths, labels, labels)
    frame = pd.read_csv(RunDir(run).val_predictions, dtype=str)
    frame.loc[3, "pred"] = "x"
    frame.to_csv(RunDir(run).val_predictions, index=False)
    fails_in_one_line(compare.main, [str(run), str(run)], capsys, "val_predictions.csv", "line 5", "'x'")


def test_json_output_holds_one_object_per_compared_run(tmp_path, capsys):
    paths, labels = photos(30)
    runs = [str(make_run(tmp_path / n, paths, labels, noisy(labels, 0.6, k))) for k, n in enumerate("abc")]
    compare.main([*runs, "--json", "--resamples", "200"])
    out = json.loads(capsys.readouterr().out)
    assert [o["run"] for o in out] == runs[1:] and all(o["against"] == runs[0] for o in out)
    for o in out:
        assert {"run", "delta", "ci_low", "ci_high", "p_better", "verdict"} <= set(o)


def test_a_k_fold_run_is_read_from_its_oof_csv_and_old_files_get_their_person_from_the_path(tmp_path):
    paths, labels = photos(20)
    run = RunDir(tmp_path / "kfold")
    (run.path / "folds").mkdir(parents=True)
    frame = predictions_frame(paths, labels, one_hot(labels), fold=0).drop(columns=["person"])
    frame.to_csv(run.oof, index=False)
    side = load_side(run.path)
    assert side.kind == "K-fold run" and side.first.n_people == 20
    assert read_predictions(run.oof).people[0] == "000000_male_Asian_40"


def test_a_repeated_run_resamples_its_seeds_too(tmp_path):
    """Two repeated runs whose seeds disagree a lot: the seed spread widens the interval beyond the people's."""
    paths, labels = photos(80)
    for name, accuracies in (("a", (0.3, 0.7)), ("b", (0.35, 0.75))):
        parent = RunDir(tmp_path / name)
        for seed, acc in zip((42, 43), accuracies):
            make_run(parent.member(seed).path, paths, labels, noisy(labels, acc, seed + len(name)))
        parent.config.write_text(yaml.safe_dump({"seed": 42}))
    repeated = compare_runs([tmp_path / "a", tmp_path / "b"], n_resamples=500)[0]
    assert repeated["seeds"] == [2, 2] and load_side(tmp_path / "a").kind == "repeated run"
    single = compare_runs([RunDir(tmp_path / "a").member(42).path, RunDir(tmp_path / "b").member(42).path],
                          n_resamples=500)[0]
    assert (repeated["ci_high"] - repeated["ci_low"]) > 1.5 * (single["ci_high"] - single["ci_low"])
    assert repeated["verdict"] == "no difference shown"


def test_members_of_a_repeated_run_must_share_their_split(tmp_path, capsys):
    parent = RunDir(tmp_path / "rep")
    for seed, offset in ((42, 0), (43, 500)):
        paths, labels = photos(10, offset=offset)
        make_run(parent.member(seed).path, paths, labels, labels)
    fails_in_one_line(compare.main, [str(parent.path), str(parent.path)], capsys, "seed_43", "split_seed")


def test_config_differences_and_people_needed():
    assert config_differences({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 1, "c": 5}, "e": 4}) == [
        ("a.c", 2, 5), ("d", 3, None), ("e", None, 4)]
    assert people_needed(100, 0.01, -0.01, 0.03) == 400  # half-width 0.02 -> twice as narrow: 4x the people
    assert people_needed(100, 0.0, -0.01, 0.01) is None
    assert verdict_text(0.004, -0.011, 0.019) == "no difference shown: +0.004 (\u22120.011 … +0.019)"
    assert verdict_text(0.021, 0.008, 0.034) == "better: +0.021 (95 % CI +0.008 … +0.034)"


def test_predictions_files_joined_by_commas_are_seeds_of_one_side(tmp_path):
    """`a.csv,b.csv`: one recipe's seeds scored on the same held-out photos (tools.score --predictions); the
    side averages them and resamples them like a repeated run; other photos or a missing file are one line."""
    paths, labels = photos(30, seed=5)
    files = []
    for seed, accuracy in ((1, 0.6), (2, 0.8)):
        make_run(tmp_path / f"s{seed}", paths, labels, noisy(labels, accuracy, seed))
        files.append(RunDir(tmp_path / f"s{seed}").val_predictions)
    side = load_side(f"{files[0]},{files[1]}")
    assert side.kind == "predictions files" and len(side.members) == 2
    alone = [load_side(f) for f in files]
    assert [m.preds.tolist() for m in side.members] == [a.first.preds.tolist() for a in alone]
    other_paths, other_labels = photos(30, seed=5, offset=100)
    make_run(tmp_path / "other", other_paths, other_labels, other_labels)
    with pytest.raises(UserError, match=r"predicts other photos than"):
        load_side(f"{files[0]},{RunDir(tmp_path / 'other').val_predictions}")
    with pytest.raises(UserError, match=r"is not a predictions file"):
        load_side(f"{files[0]},{tmp_path / 'nope.csv'}")
