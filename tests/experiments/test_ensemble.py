"""Ensembles fitted on OOF predictions: weights, offsets, honest nested estimates, inference rule."""
import numpy as np
import pandas as pd
import pytest
import yaml

from experiments.ensemble import (
    fast_macro_f1,
    fit_ensemble,
    fit_offsets,
    fit_weights,
    nested_estimates,
    read_oof,
)
from utils.labels import NUM_CLASSES
from utils.metrics import macro_f1
from utils.run_dir import PROB_COLUMNS


def write_oof(run_dir, probs, labels, folds):
    run_dir.mkdir(parents=True)
    frame = pd.DataFrame({"path": [f"img_{i:05d}.jpg" for i in range(len(labels))], "fold": folds,
                          "label": labels, "pred": probs.argmax(1)})
    frame = pd.concat([frame, pd.DataFrame(probs, columns=PROB_COLUMNS)], axis=1)
    frame.to_csv(run_dir / "oof.csv", index=False)
    return run_dir


def noisy_probs(labels, rng, skill):
    """Probabilities that put `skill` of their mass on the true class, the rest at random."""
    noise = rng.dirichlet(np.ones(NUM_CLASSES), size=len(labels))
    return (1 - skill) * noise + skill * np.eye(NUM_CLASSES)[labels]


def test_fast_macro_f1_is_the_competition_metric():
    rng = np.random.default_rng(0)
    for _ in range(20):
        y, p = rng.integers(0, 18, 300), rng.integers(0, 12, 300)
        assert fast_macro_f1(y, p) == pytest.approx(macro_f1(y, p))


def test_weights_prefer_the_better_model_and_sum_to_one():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, NUM_CLASSES, 900)
    probs = np.stack([noisy_probs(labels, rng, 0.35), noisy_probs(labels, rng, 0.02)])
    weights = fit_weights(probs, labels)
    assert weights.sum() == pytest.approx(1.0) and (weights >= 0).all() and weights[0] > weights[1]


def test_offsets_recover_a_bias_against_a_rare_class():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, NUM_CLASSES, 2000)
    probs = noisy_probs(labels, rng, 0.3)
    probs[:, 5] *= 0.2  # the model under-predicts class 5
    probs /= probs.sum(1, keepdims=True)
    weights = np.ones(1)
    offsets = fit_offsets(probs[None], weights, labels)
    assert offsets[5] > 0.5
    zero = np.zeros(NUM_CLASSES)
    assert fast_macro_f1(labels, (np.log(probs) + offsets).argmax(1)) > fast_macro_f1(labels, (np.log(probs) + zero)
                                                                                        .argmax(1))


def test_nested_estimate_is_honest_on_an_overfittable_case(tmp_path):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, NUM_CLASSES, 400)
    folds = np.arange(400) % 5
    noise = [rng.dirichlet(np.ones(NUM_CLASSES), size=400) for _ in range(3)]  # no skill at all
    runs = [write_oof(tmp_path / f"run{i}", p, labels, folds) for i, p in enumerate(noise)]
    spec = fit_ensemble(runs)
    honest, in_sample = spec["estimates"]["honest"], spec["estimates"]["in_sample"]
    assert in_sample["weighted_offsets"] > in_sample["raw"] + 0.02  # fitting on what it scores flatters
    assert honest["weighted_offsets"] < in_sample["weighted_offsets"] - 0.02  # the nested estimate does not
    if spec["use"] != "weighted_offsets":
        assert spec["offsets"] == [0.0] * NUM_CLASSES


def test_nested_estimates_fit_without_the_scored_fold(tmp_path, monkeypatch):
    from experiments import ensemble

    rng = np.random.default_rng(4)
    labels, folds = rng.integers(0, NUM_CLASSES, 300), np.arange(300) % 3
    seen = []
    real = ensemble.fit_weights

    def spy(probs, fit_labels, passes=3):
        seen.append(len(fit_labels))
        return real(probs, fit_labels, passes)

    monkeypatch.setattr(ensemble, "fit_weights", spy)
    oof = read_oof([write_oof(tmp_path / "a", noisy_probs(labels, rng, 0.3), labels, folds),
                    write_oof(tmp_path / "b", noisy_probs(labels, rng, 0.3), labels, folds)])
    nested_estimates(oof)
    assert seen == [200, 200, 200]  # each fit saw the two other folds only


def test_runs_over_other_images_are_refused(tmp_path):
    from utils.errors import DataError

    rng = np.random.default_rng(5)
    labels = rng.integers(0, NUM_CLASSES, 50)
    a = write_oof(tmp_path / "a", noisy_probs(labels, rng, 0.3), labels, np.arange(50) % 2)
    b = write_oof(tmp_path / "b", noisy_probs(labels[:40], rng, 0.3), labels[:40], np.arange(40) % 2)
    with pytest.raises(DataError, match=f"^{b}: its oof.csv covers other images than {a} \\(train every run on "
                                        "the same data\\)$"):
        read_oof([a, b])


def test_ensemble_file_round_trip(tmp_path):
    from predict.fitted_ensemble import load_ensemble, save_ensemble

    rng = np.random.default_rng(6)
    labels, folds = rng.integers(0, NUM_CLASSES, 200), np.arange(200) % 4
    spec = fit_ensemble([write_oof(tmp_path / "a", noisy_probs(labels, rng, 0.4), labels, folds)])
    loaded = load_ensemble(save_ensemble(spec, tmp_path / "ensemble.yaml"))
    assert loaded["weights"].tolist() == [1.0] and len(loaded["offsets"]) == NUM_CLASSES
    assert yaml.safe_load((tmp_path / "ensemble.yaml").read_text())["use"] in ("raw", "weighted", "weighted_offsets")


@pytest.mark.slow
def test_ensemble_end_to_end_and_pseudo_labels_stay_out_of_validation(demo_data, tmp_path, make_trainer):
    import torch

    import ensemble
    import inference
    import train
    from helpers import ROOT, predict_with, tiny_overrides

    runs = []
    for backbone in ("mobilenetv3_small_050", "resnet10t"):
        extra = {"data.n_folds": 2, "model.backbone": backbone, "name": backbone, "trainer.epochs": 2}
        runs.append(train.main(["--config", str(ROOT / "configs/demo.yaml"), "--all-folds",
                                *tiny_overrides(demo_data, tmp_path / "saved", **extra)])["run_dir"])
    spec = ensemble.main(["--runs", *runs, "--out", str(tmp_path / "ensemble.yaml")])
    assert len(spec["weights"]) == 2 and set(spec["estimates"]["honest"]) == {"raw", "weighted", "weighted_offsets"}
    out = inference.main(["--ensemble", str(tmp_path / "ensemble.yaml"), "--out", str(tmp_path / "sub.csv"),
                          "--pseudo-labels", str(tmp_path / "pseudo.csv"), "--min-prob", "0.05"])
    cpu = torch.device("cpu")
    per_run = [predict_with([r], device=cpu, eval_dir=demo_data / "eval")[1] for r in runs]
    mixed = spec["weights"][0] * per_run[0] + spec["weights"][1] * per_run[1]
    expected = (np.log(mixed / sum(spec["weights"]) + 1e-7) + np.asarray(spec["offsets"])).argmax(1)
    assert pd.read_csv(out)["ans"].tolist() == expected.tolist()

    pseudo = pd.read_csv(tmp_path / "pseudo.csv", dtype={"ImageID": str})
    assert len(pseudo) > 0 and (pseudo["probability"] >= 0.05).all()
    trainer = make_trainer(**{"data.pseudo_labels": tmp_path / "pseudo.csv", "data.pseudo_weight": 0.3})
    train_paths, val_paths = set(trainer.train_loader.dataset.paths), set(trainer.val_loader.dataset.paths)
    pseudo_paths = {str(demo_data / "eval" / "images" / i) for i in pseudo["ImageID"]}
    assert pseudo_paths <= train_paths and not pseudo_paths & val_paths
    weights = trainer.train_loader.dataset.sample_weights
    assert sorted(set(weights.tolist())) == [pytest.approx(0.3), 1.0]
    assert np.isfinite(trainer.run_epoch()["train_loss"])


@pytest.mark.parametrize("honest, use", [
    ({"raw": 0.70, "weighted": 0.72, "weighted_offsets": 0.75}, "weighted_offsets"),
    ({"raw": 0.70, "weighted": 0.72, "weighted_offsets": 0.71}, "weighted"),
    ({"raw": 0.73, "weighted": 0.72, "weighted_offsets": 0.73}, "raw"),  # a tie keeps the simpler rule
])
def test_inference_uses_the_step_with_the_best_honest_estimate(tmp_path, monkeypatch, honest, use):
    from experiments import ensemble

    rng = np.random.default_rng(8)
    labels, folds = rng.integers(0, NUM_CLASSES, 240), np.arange(240) % 3
    runs = [write_oof(tmp_path / name, noisy_probs(labels, rng, skill), labels, folds)
            for name, skill in (("a", 0.5), ("b", 0.2))]
    monkeypatch.setattr(ensemble, "nested_estimates", lambda oof: dict(honest))
    spec = ensemble.fit_ensemble(runs)
    assert spec["use"] == use and spec["estimates"]["honest"] == honest
    assert set(spec["estimates"]["in_sample"]) == set(honest)
    oof = ensemble.read_oof(runs)
    fitted = [round(float(w), 6) for w in ensemble.fit_weights(oof.probs, oof.labels)]
    assert spec["weights"] == ([0.5, 0.5] if use == "raw" else fitted)
    offsets = ensemble.fit_offsets(oof.probs, ensemble.fit_weights(oof.probs, oof.labels), oof.labels)
    expected = [round(float(o), 4) for o in offsets] if use == "weighted_offsets" else [0.0] * NUM_CLASSES
    assert spec["offsets"] == expected
    assert spec["oof_images"] == 240 and spec["runs"] == [str(r.resolve()) for r in runs]


def test_in_sample_estimates_score_each_rule(tmp_path):
    from predict.fitted_ensemble import predict as apply_rule
    from utils.metrics import macro_f1

    rng = np.random.default_rng(9)
    labels, folds = rng.integers(0, NUM_CLASSES, 300), np.arange(300) % 3
    runs = [write_oof(tmp_path / n, noisy_probs(labels, rng, s), labels, folds) for n, s in (("a", 0.3), ("b", 0.1))]
    spec = fit_ensemble(runs)
    oof = read_oof(runs)
    mean = apply_rule(oof.probs, np.full(2, 0.5), np.zeros(NUM_CLASSES))
    assert spec["estimates"]["in_sample"]["raw"] == pytest.approx(macro_f1(oof.labels, mean))
    assert spec["per_run_oof_f1"][str(runs[0].resolve())] == pytest.approx(macro_f1(labels, oof.probs[0].argmax(1)))


def test_oof_tables_that_cannot_be_combined_name_the_problem(tmp_path):
    from utils.errors import DataError, UserError

    rng = np.random.default_rng(10)
    labels = rng.integers(0, NUM_CLASSES, 40)
    a = write_oof(tmp_path / "a", noisy_probs(labels, rng, 0.3), labels, np.arange(40) % 2)
    b = write_oof(tmp_path / "b", noisy_probs(labels, rng, 0.3), (labels + 1) % NUM_CLASSES, np.arange(40) % 2)
    with pytest.raises(DataError, match=f"{b}: its oof.csv labels differ from {a}'s"):
        read_oof([a, b])
    (tmp_path / "c").mkdir()
    pd.DataFrame({"path": ["x"], "fold": [0]}).to_csv(tmp_path / "c" / "oof.csv", index=False)
    with pytest.raises(DataError, match=r"oof.csv: missing column 'label' \(not a val_predictions.csv or oof.csv\)$"):
        read_oof([tmp_path / "c"])
    with pytest.raises(UserError, match="no oof.csv"):
        read_oof([tmp_path / "missing"])
    oof = read_oof([a])
    assert oof.probs.dtype == np.float64 and oof.runs == [str(a.resolve())]


@pytest.mark.parametrize("column, value, message", [
    ("prob_03", "nan", "line 7: probabilities are not finite and >= 0"),
    ("prob_17", "", "line 7: probabilities are not finite and >= 0"),
    ("prob_00", "-0.5", "line 7: probabilities are not finite and >= 0"),
    ("fold", "", "line 7: fold '' is not a whole number"),
    ("fold", "1.5", "line 7: fold '1.5' is not a whole number"),
    ("label", "wear", "line 7: label 'wear' is not a class id 0-17"),
])
def test_a_damaged_oof_cell_is_one_line_from_ensemble_and_nothing_is_written(tmp_path, capsys, column, value,
                                                                            message):
    import ensemble
    from helpers import fails_in_one_line

    rng = np.random.default_rng(11)
    labels = rng.integers(0, NUM_CLASSES, 20)
    a = write_oof(tmp_path / "a", noisy_probs(labels, rng, 0.3), labels, np.arange(20) % 2)
    b = write_oof(tmp_path / "b", noisy_probs(labels, rng, 0.3), labels, np.arange(20) % 2)
    frame = pd.read_csv(b / "oof.csv", dtype=str, keep_default_na=False)
    frame.loc[5, column] = value
    frame.to_csv(b / "oof.csv", index=False)
    out = tmp_path / "ens.yaml"
    fails_in_one_line(ensemble.main, ["--runs", str(a), str(b), "--out", str(out)], capsys, "oof.csv", message)
    assert not out.exists()


def test_a_run_given_twice_is_refused_however_it_is_spelled(tmp_path, capsys):
    import ensemble
    from helpers import fails_in_one_line

    rng = np.random.default_rng(12)
    labels = rng.integers(0, NUM_CLASSES, 20)
    a = write_oof(tmp_path / "a", noisy_probs(labels, rng, 0.3), labels, np.arange(20) % 2)
    b = write_oof(tmp_path / "b", noisy_probs(labels, rng, 0.3), labels, np.arange(20) % 2)
    again = tmp_path / "b" / ".." / "a"
    out = tmp_path / "ens.yaml"
    fails_in_one_line(ensemble.main, ["--runs", str(a), str(b), str(again), "--out", str(out)], capsys,
                      f"--runs: {again} is given twice (as {a} before)")
    assert not out.exists()


def good_spec(tmp_path):
    return {"runs": [str(tmp_path / "a"), str(tmp_path / "b")], "weights": [3.0, 1.0],
            "offsets": [0.0] * (NUM_CLASSES - 1) + [0.5], "use": "weighted_offsets"}


@pytest.mark.parametrize("change, message", [
    ({"weights": ["heavy", 1.0]}, "weights and offsets must be lists of numbers"),
    ({"weights": [1.0]}, "weights must be 2 finite non-negative numbers"),
    ({"weights": [1.0, -0.5]}, "weights must be 2 finite non-negative numbers"),
    ({"weights": [0.0, 0.0]}, "weights must be 2 finite non-negative numbers"),
    ({"weights": [1.0, float("inf")]}, "weights must be 2 finite non-negative numbers"),
    ({"offsets": [0.0] * 3}, f"offsets must be {NUM_CLASSES} finite numbers"),
    ({"offsets": [float("nan")] * NUM_CLASSES}, f"offsets must be {NUM_CLASSES} finite numbers"),
    ({"runs": "RUN_A"}, "runs must be a list of run directories"),
    ({"runs": [1, 2]}, "runs must be a list of run directories"),
    ({"weights": None, "drop": "weights"}, "not an ensemble file (needs runs, weights, offsets)"),
])
def test_a_damaged_ensemble_file_is_one_line(tmp_path, change, message):
    from predict.fitted_ensemble import load_ensemble
    from utils.errors import UserError

    spec = {**good_spec(tmp_path), **{k: v for k, v in change.items() if k != "drop"}}
    spec.pop(change.get("drop", "-"), None)
    path = tmp_path / "ensemble.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_ensemble(path)
    path.write_text("runs: [unclosed\n")
    with pytest.raises(UserError, match="cannot read ensemble file \\(ParserError\\)"):
        load_ensemble(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(UserError, match="not an ensemble file"):
        load_ensemble(path)


def test_a_loaded_ensemble_has_normalised_weights_and_its_offsets(tmp_path):
    from predict.fitted_ensemble import load_ensemble, save_ensemble

    loaded = load_ensemble(save_ensemble(good_spec(tmp_path), tmp_path / "ensemble.yaml"))
    assert loaded["weights"].tolist() == [0.75, 0.25] and loaded["offsets"][-1] == 0.5
    assert list(yaml.safe_load((tmp_path / "ensemble.yaml").read_text())) == ["runs", "weights", "offsets", "use"]


def test_a_run_may_weigh_zero_and_offsets_come_back_as_numbers(tmp_path):
    from predict.fitted_ensemble import decision_scores, load_ensemble, save_ensemble

    spec = {**good_spec(tmp_path), "weights": [1.0, 0.0]}
    loaded = load_ensemble(save_ensemble(spec, tmp_path / "ensemble.yaml"))
    assert loaded["weights"].tolist() == [1.0, 0.0]
    assert isinstance(loaded["offsets"], np.ndarray) and loaded["offsets"].dtype == np.float64
    probs = np.zeros((2, 1, NUM_CLASSES))
    probs[:, 0, 3] = 1.0  # every other class has probability 0: its score must stay finite
    mixed, scores = decision_scores(probs, loaded["weights"], loaded["offsets"])
    assert np.isfinite(scores).all() and scores.argmax() == 3


def test_fast_macro_f1_counts_only_classes_in_truth_or_prediction():
    y, p = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 3])  # class 2 once in truth, 3 once predicted
    assert fast_macro_f1(y, p) == pytest.approx(macro_f1(y, p)) == pytest.approx((2 / 3 + 2 / 3 + 0 + 0) / 4)
    assert fast_macro_f1(np.array([], dtype=int), np.array([], dtype=int)) == 0.0


def rule(probs, weights, offsets):
    """The inference rule, written out: argmax of log(weighted mean) + offsets."""
    return (np.log(np.tensordot(weights, probs, axes=1) + 1e-7) + offsets).argmax(axis=1)


def test_fitted_weights_equal_an_independent_coordinate_ascent():
    from experiments.ensemble import WEIGHT_GRID

    for seed in range(4):
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, NUM_CLASSES, 400)
        probs = np.stack([noisy_probs(labels, rng, s) for s in (0.06, 0.04, 0.05)])
        got = fit_weights(probs, labels)
        expected = ascent_weights(probs, labels, WEIGHT_GRID)
        assert np.allclose(got, expected) and got.sum() == pytest.approx(1.0), seed


def ascent(score, start, coordinates, grid, move, passes=3):
    """Coordinate ascent written out independently: for each coordinate and grid value, `move(current,
    coordinate, value)` is a candidate, kept only if it scores strictly higher; stop after a pass without a
    change."""
    current, best = start, score(start)
    for _ in range(passes):
        changed = False
        for k in range(coordinates):
            for value in grid:
                trial = move(current, k, value)
                if score(trial) > best + 1e-12:
                    best, current, changed = score(trial), trial, True
        if not changed:
            break
    return current


def with_weight(weights, r, value):
    """Run `r` at `value`, the others keeping their proportions in the rest (evenly when they have none)."""
    others = [w for i, w in enumerate(weights) if i != r]
    total, n = sum(others), len(weights)
    spread = [w / total * (1 - value) for w in others] if total > 0 else [(1 - value) / (n - 1)] * (n - 1)
    return np.array(spread[:r] + [value] + spread[r:])


def with_offset(offsets, c, value):
    trial = offsets.copy()
    trial[c] = value
    return trial


def ascent_weights(probs, labels, grid, passes=3):
    zero = np.zeros(NUM_CLASSES)
    return ascent(lambda w: fast_macro_f1(labels, rule(probs, w, zero)), np.full(len(probs), 1 / len(probs)),
                  len(probs), grid, with_weight, passes)


def ascent_offsets(probs, weights, labels, grid, passes=3):
    return ascent(lambda o: fast_macro_f1(labels, rule(probs, weights, o)), np.zeros(NUM_CLASSES), NUM_CLASSES,
                  grid, with_offset, passes)


def test_fitted_offsets_equal_an_independent_coordinate_ascent():
    from experiments.ensemble import OFFSET_GRID

    for seed in range(3):
        rng = np.random.default_rng(10 + seed)
        labels = rng.integers(0, NUM_CLASSES, 300)
        probs = np.stack([noisy_probs(labels, rng, 0.05), noisy_probs(labels, rng, 0.04)])
        weights = np.array([0.6, 0.4])
        assert np.allclose(fit_offsets(probs, weights, labels), ascent_offsets(probs, weights, labels, OFFSET_GRID))


def test_ties_keep_equal_weights_and_zero_offsets():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, NUM_CLASSES, 200)
    one = noisy_probs(labels, rng, 0.5)  # right on every photo: every rule ties at macro-F1 1.0
    probs = np.stack([one, one, one])
    assert np.allclose(fit_weights(probs, labels), [1 / 3] * 3)
    assert np.allclose(fit_offsets(probs, np.full(3, 1 / 3), labels), 0.0)


def test_a_run_at_weight_one_shares_the_rest_evenly_when_its_partners_have_none():
    """From weights (1, 0, 0) a lower value for run 0 gives the rest to runs 1 and 2 in equal parts."""
    from experiments.ensemble import WEIGHT_GRID

    rng = np.random.default_rng(3)
    labels = rng.integers(0, NUM_CLASSES, 500)
    strong = noisy_probs(labels, rng, 0.08)
    helpers = [noisy_probs(labels, rng, 0.03) for _ in range(2)]
    probs = np.stack([strong, *helpers])
    assert np.allclose(fit_weights(probs, labels, passes=5), ascent_weights(probs, labels, WEIGHT_GRID, passes=5))


@pytest.mark.parametrize("chosen", ["raw", "weighted", "weighted_offsets"])
def test_the_chosen_step_decides_weights_offsets_and_the_warning(tmp_path, monkeypatch, caplog, chosen):
    """Weights only when the weighted step (or the next) wins on unseen folds, offsets only when weighted +
    offsets wins, and a warning naming the step used otherwise."""
    import experiments.ensemble as ensemble

    rng = np.random.default_rng(8)
    labels = rng.integers(0, NUM_CLASSES, 600)
    folds = np.arange(600) % 3
    runs = [write_oof(tmp_path / name, noisy_probs(labels, rng, skill), labels, folds)
            for name, skill in (("a", 0.08), ("b", 0.03), ("c", 0.05))]
    honest = {"raw": 0.5, "weighted": 0.5, "weighted_offsets": 0.5, chosen: 0.6}
    monkeypatch.setattr(ensemble, "nested_estimates", lambda oof: dict(honest))
    oof = read_oof(runs)
    weights = fit_weights(oof.probs, oof.labels)
    offsets = fit_offsets(oof.probs, weights, oof.labels)
    assert np.abs(offsets).max() > 0 and not np.allclose(weights, 1 / 3)  # the fit itself moves both
    with caplog.at_level("WARNING"):
        spec = fit_ensemble(runs)
    assert spec["use"] == chosen
    expected_weights = [round(1 / 3, 6)] * 3 if chosen == "raw" else [round(float(w), 6) for w in weights]
    assert spec["weights"] == expected_weights
    expected_offsets = [round(float(o), 4) for o in offsets] if chosen == "weighted_offsets" else [0.0] * NUM_CLASSES
    assert spec["offsets"] == expected_offsets
    if chosen == "weighted_offsets":
        assert "honest estimate" not in caplog.text
    else:
        assert (f"honest estimate of weighted + offsets (0.5000) is not above {chosen} (0.6000): the fit does not "
                f"carry to unseen folds, so inference uses {chosen.replace('_', ' + ')}") in caplog.text


@pytest.mark.parametrize("seed", [0, 95])  # found by search: a second pass improves (0); a fourth would (95)
def test_weight_passes_go_on_while_they_improve_and_stop_at_three(seed):
    from experiments.ensemble import WEIGHT_GRID

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, int(rng.integers(60, 200)))
    skills = rng.uniform(0.0, 0.12, 3)
    probs = np.stack([noisy_probs(labels, rng, s) for s in skills])
    assert not np.allclose(ascent_weights(probs, labels, WEIGHT_GRID, passes=1 if seed == 0 else 3),
                           ascent_weights(probs, labels, WEIGHT_GRID, passes=3 if seed == 0 else 4))
    assert np.allclose(fit_weights(probs, labels), ascent_weights(probs, labels, WEIGHT_GRID, passes=3))


def test_inference_applies_the_fitted_weights_and_offsets(tmp_path, monkeypatch):
    """The glue of `inference.py --ensemble`: each run's probabilities mixed by the file's weights, then its
    offsets added; checked against the rule written out, on data where the offsets change the answer."""
    from predict import predictor
    from predict.fitted_ensemble import load_ensemble, save_ensemble

    rng = np.random.default_rng(3)
    per_run = [rng.dirichlet(np.ones(NUM_CLASSES), size=40) for _ in range(2)]
    seen = {}

    def fake_predict_groups(models, options):
        seen.update(models=models, options=options)
        return "table", per_run, [1, 1]

    monkeypatch.setattr(predictor, "predict_groups", fake_predict_groups)
    spec = {**good_spec(tmp_path), "offsets": rng.normal(0, 1.5, NUM_CLASSES).round(4).tolist()}
    spec = load_ensemble(save_ensemble(spec, tmp_path / "e.yaml"))
    table, mixed, scores = predictor.fitted_ensemble_scores(spec, "models", "options")
    weights, offsets = np.array([0.75, 0.25]), np.array(spec["offsets"])
    assert table == "table" and seen == {"models": "models", "options": "options"}
    assert np.allclose(mixed, 0.75 * per_run[0] + 0.25 * per_run[1])
    expected = rule(np.stack(per_run), weights, offsets)
    assert (scores.argmax(axis=1) == expected).all() and (expected != mixed.argmax(axis=1)).any()
