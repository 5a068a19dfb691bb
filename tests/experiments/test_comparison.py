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
    assert unchanged["classes"] == []  # no class moved: none is listed
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


def hand_result(**changes):
    """A comparison result as `compare_pair` returns it, with round numbers a reader can check by eye."""
    row = {"a": 0.5, "b": 0.55, "delta": 0.05, "ci_low": -0.01, "ci_high": 0.11, "p_better": 0.93}
    result = {**row, "run": "B", "against": "A", "paired": True, "people": 40, "photos": 280, "resamples": 1000,
              "seeds": [1, 1], "people_needed": 194, "kinds": ["run", "run"], "val_ratio": 0.2,
              "verdict": "no difference shown", "text": verdict_text(0.05, -0.01, 0.11),
              "tasks": {t: {**row, "a": 0.6, "b": 0.7, "delta": 0.1} for t in ("mask", "gender", "age")},
              "classes": [{**row, "class": "wear/male/<30"}], "differs": [["seed", 42, 43]]}
    return {**result, **changes}


def test_describe_prints_each_row_the_verdict_and_what_would_settle_it():
    from experiments.comparison import describe

    lines = describe(hand_result()).splitlines()
    assert lines[0] == "B vs A: paired bootstrap over 40 validation people (280 photos), 1000 resamples"
    assert lines[1] == "  what differs: seed: 42 -> 43"
    assert lines[2] == "  macro-F1               0.5000 -> 0.5500  +0.050 (\u22120.010 … +0.110)  P(better) 0.93"
    assert lines[3].startswith("  mask                   0.6000 -> 0.7000  +0.100 ")
    assert [line.split()[0] for line in lines[2:7]] == ["macro-F1", "mask", "gender", "age", "wear/male/<30"]
    assert lines[7] == ("  verdict: no difference shown: +0.050 (\u22120.010 … +0.110); a difference of this size "
                        "would need about 194 validation people to show (now 40); K-fold runs (train.py "
                        "--all-folds data.n_folds=5) validate on all ≈200 training people")
    assert len(lines) == 8


def test_describe_of_seeds_unpaired_sides_and_long_or_missing_differences():
    from experiments.comparison import describe

    long = "x" * 80
    text = describe(hand_result(paired=False, people=[40, 30], seeds=[3, 2], differs=[["note", None, long]],
                                kinds=["K-fold run", "K-fold run"], people_needed=5000))
    lines = text.splitlines()
    assert lines[0] == ("B vs A: UNPAIRED bootstrap (40 and 30 people, drawn independently), 1000 resamples; the "
                        "seed spread of 3 and 2 seeds included")
    assert lines[1] == "  what differs: note: null -> " + "x" * 59 + "…"
    assert lines[-1].endswith("would need about 5,000 validation people to show (now 30)")  # no K-fold hint
    plain = describe(hand_result(differs=[], verdict="better", text="better: …", people_needed=None)).splitlines()
    assert plain[1] == "  what differs: nothing in the resolved configs" and plain[-1] == "  verdict: better: …"
    for ratio in (None, 1.0, 0, "0.2"):
        assert "K-fold" not in describe(hand_result(val_ratio=ratio))


def test_p_better_counts_ties_as_half_and_rows_name_their_metric():
    import numpy as np

    from experiments.comparison import summarise

    a, b = {"f1": 0.5}, {"f1": 0.6}
    row = summarise("B", "f1", a, b, np.array([0.1, 0.0, 0.0, -0.1, 0.2, 0.0, 0.1, 0.3]))
    assert row["p_better"] == pytest.approx(4 / 8 + 0.5 * 3 / 8) and row["metric"] == "f1" and row["run"] == "B"
    assert row["delta"] == pytest.approx(0.1) and (row["a"], row["b"]) == (0.5, 0.6)
    assert summarise("B", "f1", a, b, np.ones(10))["p_better"] == 1.0


def test_a_key_set_to_null_differs_from_a_key_not_there_and_people_needed_grows_as_the_square():
    assert config_differences({"a": None}, {}) == [("a", None, None)]
    assert config_differences({}, {"a": None}) == [("a", None, None)]
    assert config_differences({"a": None}, {"a": None}) == []
    assert people_needed(100, 0.01, -0.02, 0.04) == 900  # half-width 0.03 = 3 x the difference: 9 x the people
    assert people_needed(100, -0.01, -0.02, 0.04) == 900
    assert people_needed(100, 0.01, float("-inf"), 0.04) is None


def test_what_a_run_without_predictions_is_told(tmp_path):
    paths, labels = photos(10)
    assert load_side(make_run(tmp_path / "a", paths, labels, labels)).kind == "run"
    (tmp_path / "kfold" / "folds").mkdir(parents=True)
    with pytest.raises(UserError) as err:
        load_side(tmp_path / "kfold")
    assert str(err.value) == (f"{tmp_path / 'kfold'}: a K-fold run without oof.csv (not finished: train.py --resume "
                              "each fold)")
    (tmp_path / "none").mkdir()
    with pytest.raises(UserError) as err:
        load_side(tmp_path / "none")
    assert str(err.value) == (f"{tmp_path / 'none'}: no val_predictions.csv (a run without a validation set, or "
                              "trained before runs kept their validation predictions)")


def test_the_odd_member_is_named_against_the_first_and_unpaired_runs_are_told_how_to_pair(tmp_path):
    paths, labels = photos(10)
    files = [RunDir(make_run(tmp_path / f"s{k}", paths, labels, labels)).val_predictions for k in range(2)]
    other_paths, other_labels = photos(10, offset=100)
    files.append(RunDir(make_run(tmp_path / "odd", other_paths, other_labels, other_labels)).val_predictions)
    joined = ",".join(map(str, files))
    with pytest.raises(UserError) as err:
        load_side(joined)
    assert str(err.value) == (f"{files[2]}: predicts other photos than {files[0]} (the members of {joined} must "
                              "share one split: data.split_seed, or one eval set)")
    with pytest.raises(UserError) as err:
        compare_runs([files[0], files[2]], n_resamples=100)
    assert str(err.value).endswith("photos shared): compare runs of one split (data.split_seed, data.n_folds) or "
                                   "pass --unpaired")


def test_one_sides_mean_and_interval_are_its_macro_f1_and_a_bootstrap_around_it(tmp_path):
    from sklearn.metrics import f1_score

    from experiments.comparison import mean_interval

    paths, labels = photos(60, seed=2)
    preds = noisy(labels, 0.6, 3)
    side = load_side(make_run(tmp_path / "a", paths, labels, preds))
    point, low, high = mean_interval(side, n_resamples=300, seed=1)
    assert point == pytest.approx(f1_score(labels, preds, average="macro"))
    assert low < point < high and high - low > 0.02
    assert mean_interval(side, n_resamples=300, seed=1) == (point, low, high)
    assert mean_interval(side, n_resamples=300, seed=2)[1:] != (low, high)
    narrow = mean_interval(side, n_resamples=300, seed=1)
    assert mean_interval(side)[0] == narrow[0]  # the defaults: the same point


def test_each_kind_of_side_keeps_its_name_kind_config_and_validation_share(tmp_path):
    paths, labels = photos(12)
    run = make_run(tmp_path / "run", paths, labels, labels, data={"val_ratio": 0.25})
    side = load_side(run)
    assert (side.name, side.kind, side.val_ratio) == (str(run), "run", 0.25) and side.config["seed"] == 42
    csv = RunDir(run).val_predictions
    side = load_side(csv)
    assert (side.name, side.kind, side.config["data"]) == (str(csv), "predictions file", {"val_ratio": 0.25})
    second = RunDir(make_run(tmp_path / "second", paths, labels, labels, seed=7)).val_predictions
    for joined, kind in ((f"{csv},", "predictions file"), (f"{second},{csv}", "predictions files")):
        side = load_side(joined)
        assert (side.name, side.kind) == (joined, kind)
    assert load_side(f"{second},{csv}").config["seed"] == 7  # the first file's run
    parent = RunDir(tmp_path / "rep")
    for seed in (42, 43):
        make_run(parent.member(seed).path, paths, labels, labels)
    parent.config.write_text(yaml.safe_dump({"seed": 42, "data": {"val_ratio": 0.3}}))
    side = load_side(parent.path)
    assert (side.name, side.kind, side.val_ratio, len(side.members)) == (str(parent.path), "repeated run", 0.3, 2)
    for data in ({}, None, "text"):
        parent.config.write_text(yaml.safe_dump({"seed": 42, "data": data}))
        assert load_side(parent.path).val_ratio is None


def test_a_repeated_runs_missing_member_files_are_named(tmp_path):
    paths, labels = photos(12)
    parent = RunDir(tmp_path / "rep")
    make_run(parent.member(42).path, paths, labels, labels)
    parent.member(43).path.mkdir(parents=True)
    parent.config.write_text(yaml.safe_dump({"seed": 42}))
    with pytest.raises(UserError) as err:
        load_side(parent.path)
    assert str(err.value).startswith(f"{parent.member(43).path}: no val_predictions.csv")
    other_paths, other_labels = photos(12, offset=50)
    make_run(parent.member(44).path, other_paths, other_labels, other_labels)
    RunDir(parent.member(43).path).val_predictions.write_text(RunDir(parent.member(42).path).val_predictions.read_text())
    with pytest.raises(UserError, match=rf"the members of {tmp_path / 'rep'} must share one split"):
        load_side(parent.path)


def test_a_repeated_sides_bootstrap_averages_the_drawn_seeds_of_each_resample(tmp_path):
    import numpy as np

    from experiments.comparison import mean_interval, side_samples
    from utils.bootstrap import person_index, resample_counts

    paths, labels = photos(30)
    parent = RunDir(tmp_path / "rep")
    make_run(parent.member(42).path, paths, labels, labels)  # always right: F1 1 in every resample
    make_run(parent.member(43).path, paths, labels, (labels + 1) % 18)  # always wrong: F1 0
    parent.config.write_text(yaml.safe_dump({"seed": 42}))
    side = load_side(parent.path)
    person, n = person_index(side.first.people)
    rng = np.random.default_rng(0)
    point, samples = side_samples(side, person, n, resample_counts(n, 400, rng), rng)
    assert point["f1"] == 0.5 and samples["f1"].shape == (400,)
    assert set(np.round(samples["f1"], 6)) <= {0.0, 0.5, 1.0}  # two seeds drawn with replacement, averaged
    assert 0.35 < np.mean(samples["f1"] == 0.5) < 0.65 and np.mean(samples["f1"] == 1.0) > 0.15
    mean, low, high = mean_interval(side, n_resamples=400)
    assert (mean, low, high) == (0.5, 0.0, 1.0)


def test_a_comparisons_numbers_name_the_run_the_people_photos_and_resamples(tmp_path):
    paths, labels = photos(40, seed=3)
    a = make_run(tmp_path / "a", paths, labels, noisy(labels, 0.5, 1))
    changed = noisy(labels, 0.5, 1).copy()
    changed[labels == labels[0]] = labels[labels == labels[0]]  # only one class's photos change
    b = make_run(tmp_path / "b", paths, labels, changed)
    other_paths, other_labels = photos(40, seed=3, offset=500)
    c = make_run(tmp_path / "c", other_paths, other_labels, other_labels)
    result = compare_runs([a, b], n_resamples=300, seed=2)[0]
    assert result["people"] == 40 and result["photos"] == len(paths) and result["resamples"] == 300
    assert result["tasks"]["mask"]["run"] == str(b) and all(c["run"] == str(b) for c in result["classes"])
    assert result["people_needed"] == people_needed(40, result["delta"], result["ci_low"], result["ci_high"])
    assert 1 <= len(result["classes"]) <= 3 and all(c["delta"] != 0 for c in result["classes"])
    with pytest.raises(UserError) as err:
        compare_runs([a, b, c], n_resamples=300)
    assert str(err.value).startswith(f"{c} and {a} are validated on different people")
    with pytest.raises(UserError) as err:
        compare_runs([a])
    assert str(err.value) == "compare: give at least two runs (the first is the reference)"


def test_describe_boundaries_two_seeds_two_differences_and_a_clear_verdict():
    from experiments.comparison import describe, shown

    text = describe(hand_result(seeds=[1, 2], differs=[["a", 1, 2], ["b", "x", "y"]]))
    assert "; the seed spread of 1 and 2 seeds included" in text.splitlines()[0]
    assert text.splitlines()[1] == "  what differs: a: 1 -> 2, b: x -> y"
    better = describe(hand_result(verdict="better", text="better: +0.050 (95 % CI +0.010 … +0.090)"))
    assert better.splitlines()[-1] == "  verdict: better: +0.050 (95 % CI +0.010 … +0.090)"
    assert shown("y" * 60) == "y" * 60 and shown("y" * 61) == "y" * 59 + "…" and shown([1, 2]) == "[1, 2]"


def test_a_repeated_run_without_members_is_one_line(tmp_path):
    parent = RunDir(tmp_path / "rep")
    parent.seeds_dir.mkdir(parents=True)
    parent.config.write_text(yaml.safe_dump({"seed": 42}))
    assert parent.is_repeated
    with pytest.raises(UserError) as err:
        load_side(parent.path)
    assert str(err.value) == f"{parent.path}: a repeated run without members under {parent.seeds_dir.name}/"
