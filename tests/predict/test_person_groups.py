"""Grouping photos into people and pooling gender and age: against hand-made groups and probabilities."""
from pathlib import Path

import numpy as np
import pytest

from predict.person_groups import completeness, group_photos, marginals, photo_statistics, pool_groups, purity
from utils.labels import encode


def test_purity_and_completeness_by_hand():
    people = ["a", "a", "a", "b", "b", "c"]
    assert purity(np.array([0, 0, 0, 1, 1, 2]), people) == 1.0 and completeness(np.array([0, 0, 0, 1, 1, 2]),
                                                                                  people) == 1.0
    merged = np.array([0, 0, 0, 0, 0, 1])  # a and b in one group: 3 of its 5 photos are a's
    assert purity(merged, people) == pytest.approx((3 + 1) / 6) and completeness(merged, people) == 1.0
    split = np.array([0, 1, 2, 3, 3, 4])  # a in three groups
    assert purity(split, people) == 1.0 and completeness(split, people) == pytest.approx((1 + 2 + 1) / 6)


def test_marginals_sum_the_classes_of_each_task():
    probs = np.zeros((1, 18))
    probs[0, encode(2, 1, 0)] = 0.6
    probs[0, encode(0, 1, 2)] = 0.4
    mask, gender, age = marginals(probs)
    assert mask.tolist() == [[0.4, 0.0, 0.6]] and gender.tolist() == [[0.0, 1.0]]
    assert age.tolist() == [[0.6, 0.0, 0.4]]


def test_pooling_gives_a_group_one_gender_and_age_and_keeps_each_photo_mask():
    def photo(mask, p_female, p_old):
        """Independent task probabilities -> 18 class probabilities."""
        m = np.eye(3)[mask] * 0.9 + 0.1 / 3
        g = np.array([1 - p_female, p_female])
        a = np.array([1 - p_old, 0.0, p_old])
        return np.array([m[c // 6] * g[(c // 3) % 2] * a[c % 3] for c in range(18)])

    # one person, 3 photos: two say female/old weakly, one says male/young strongly
    probs = np.stack([photo(0, 0.7, 0.7), photo(1, 0.7, 0.7), photo(2, 0.3, 0.45)])
    pooled = pool_groups(probs, np.array([0, 0, 0]))
    assert np.allclose(pooled.sum(axis=1), 1.0)
    # geometric mean of gender: (0.7*0.7*0.3)^(1/3) vs (0.3*0.3*0.7)^(1/3), normalised
    female = (0.7 * 0.7 * 0.3) ** (1 / 3)
    male = (0.3 * 0.3 * 0.7) ** (1 / 3)
    _, gender, age = marginals(pooled)
    assert np.allclose(gender, [[male / (male + female), female / (male + female)]] * 3)
    assert len({tuple(a) for a in np.round(age, 6)}) == 1  # one age for the whole group
    assert [c // 6 for c in pooled.argmax(axis=1)] == [0, 1, 2]  # each photo keeps its own mask state
    assert all((c // 3) % 2 == 1 for c in pooled.argmax(axis=1))  # and the group's gender
    # another group is untouched by this one
    two = pool_groups(np.concatenate([probs, probs[2:]]), np.array([0, 0, 0, 1]))
    assert np.allclose(two[3], probs[2] / probs[2].sum(), atol=1e-6)


def test_a_photo_sure_of_its_gender_or_age_keeps_it():
    def photo(p_female, p_old):
        g, a = np.array([1 - p_female, p_female]), np.array([1 - p_old, 0.0, p_old])
        return np.array([(1.0 if c // 6 == 0 else 0.0) * g[(c // 3) % 2] * a[c % 3] for c in range(18)])

    probs = np.stack([photo(0.95, 0.6), photo(0.1, 0.3), photo(0.1, 0.3)])  # photo 0: sure female, unsure age
    _, gender, age = marginals(pool_groups(probs, np.zeros(3, dtype=int)))
    assert np.allclose(gender[0], [0.05, 0.95]) and gender[1].argmax() == 0  # kept; the others pooled
    assert np.allclose(age[0], age[1]) and age[0].argmax() == 0  # nobody sure of the age: pooled for all
    _, gender, _ = marginals(pool_groups(probs, np.zeros(3, dtype=int), confident=1.01))
    assert gender[0].argmax() == 0  # without the gate the group overrules it


def test_photo_statistics_read_the_borders_not_the_face():
    image = np.zeros((100, 80, 3), np.uint8)
    image[:, :] = (200, 10, 10)
    with_face = image.copy()
    with_face[30:70, 25:55] = (0, 255, 0)  # the middle changes: a mask on or off
    assert np.allclose(photo_statistics(image), photo_statistics(with_face))
    other_background = image.copy()
    other_background[:15] = (10, 10, 200)
    assert not np.allclose(photo_statistics(image), photo_statistics(other_background))


def test_grouping_finds_people_from_their_sittings_and_degrades_gracefully():
    rng = np.random.default_rng(0)
    sizes = [7] * 10 + [5, 6, 8]  # not every person has exactly 7 photos
    people = np.repeat(np.arange(len(sizes)), sizes)
    centres = rng.normal(0, 1, (len(sizes), 24))
    statistics = centres[people] + rng.normal(0, 0.05, (len(people), 24))
    attributes = rng.normal(0, 1, (len(sizes), 5))[people] + rng.normal(0, 0.3, (len(people), 5))
    groups = group_photos(statistics, attributes, group_size=7)
    assert len(set(groups)) == round(len(people) / 7)
    assert purity(groups, people) >= 0.9 and completeness(groups, people) >= 0.9
    assert group_photos(statistics[:5], group_size=7).tolist() == [0] * 5  # fewer photos than a person


@pytest.mark.slow  # predicts the eval and validation photos twice
def test_inference_group_people_writes_groups_and_reports_validation(demo_data, tmp_path, caplog):
    import pandas as pd
    import torch

    import inference
    from helpers import ROOT, tiny_overrides
    from model.classifier import build_model
    from trainer.checkpoint import save_checkpoint
    from utils.config import load_config
    from utils.labels import class_names

    config = load_config(ROOT / "configs/demo.yaml", tiny_overrides(demo_data, tmp_path, **{"data.val_ratio": 0.5}))
    torch.manual_seed(0)
    ckpt = tmp_path / "run" / "best.pth"
    ckpt.parent.mkdir()
    save_checkpoint({"config": config.to_dict(), "model": build_model(config.model).state_dict(),
                     "class_names": class_names(), "epoch": 1}, ckpt)
    with caplog.at_level("INFO"):
        out = inference.main(["--ckpt", str(ckpt), "--group-people", "always", "--tta", "--group-size", "7"])
    groups = pd.read_csv(out.with_name("groups.csv"))
    info = pd.read_csv(demo_data / "eval" / "info.csv")
    assert groups["ImageID"].tolist() == info["ImageID"].tolist()
    assert groups["group"].nunique() == round(len(info) / 7)
    assert "validation photos of" in caplog.text and "purity" in caplog.text
    submission = pd.read_csv(out)
    # pooled: within a group every photo has the same gender and age group
    merged = submission.merge(groups, on="ImageID")
    assert (merged.assign(ga=merged["ans"] % 6).groupby("group")["ga"].nunique() == 1).all()


def test_unit_rows_standardise_columns_then_scale_rows_to_length_one():
    from predict.person_groups import unit_rows

    x = np.array([[1.0, 100.0], [3.0, 300.0], [5.0, 600.0]])
    z = (x - x.mean(axis=0)) / x.std(axis=0)  # by hand: per column
    expected = z / np.linalg.norm(z, axis=1, keepdims=True)
    assert np.allclose(unit_rows(x), expected, atol=1e-6)
    assert np.allclose(np.linalg.norm(unit_rows(x), axis=1), 1.0)


def test_person_attributes_are_log_gender_and_age_marginals():
    from predict.person_groups import person_attributes

    probs = np.zeros((2, 18))
    probs[0, encode(1, 0, 2)] = 1.0
    probs[1, encode(0, 1, 1)] = 1.0
    assert person_attributes(probs).shape == (2, 5)
    assert np.allclose(person_attributes(probs), np.log(np.array([[1, 0, 0, 0, 1], [0, 1, 0, 1, 0]]) + 1e-4))


def test_photo_statistics_regions_and_scale():
    image = np.zeros((100, 100, 3), np.uint8)
    image[:, :] = (0, 255, 0)
    image[:, :15] = (255, 0, 0)  # left border red, right border blue, the rest green
    image[:, 85:] = (0, 0, 255)
    stats = photo_statistics(image).reshape(4, 3)  # top, left, right, bottom
    assert stats[1].tolist() == [1.0, 0.0, 0.0] and stats[2].tolist() == [0.0, 0.0, 1.0]
    assert stats[0].tolist() == [0.0, 1.0, 0.0] and stats[3].tolist() == [0.0, 1.0, 0.0]
    tiny = np.zeros((6, 6, 3), np.uint8)  # a 6-pixel photo still has 1-pixel borders
    tiny[0] = 255
    assert photo_statistics(tiny).reshape(4, 3)[0].tolist() == [1.0, 1.0, 1.0]
    tiny = np.zeros((6, 6, 3), np.uint8)
    tiny[:, 0] = 255
    assert photo_statistics(tiny).reshape(4, 3)[1].tolist() == [1.0, 1.0, 1.0]


def test_two_people_make_two_integer_groups():
    statistics = np.repeat(np.array([[0.1] * 12, [0.9] * 12]), 7, axis=0) + np.linspace(0, 0.01, 14)[:, None]
    groups = group_photos(statistics, group_size=7)
    assert np.issubdtype(groups.dtype, np.integer) and purity(groups, [0] * 7 + [1] * 7) == 1.0
    assert len(set(groups)) == 2
    assert np.issubdtype(group_photos(statistics[:3], group_size=7).dtype, np.integer)
    assert purity(np.array([0]), ["a"]) == 1.0


def test_only_unsure_photos_are_pooled_and_rows_stay_distributions():
    def photo(p_female):
        g = np.array([1 - p_female, p_female])
        return np.array([(1.0 if c // 6 == 0 else 0.0) * g[(c // 3) % 2] * (1.0 if c % 3 == 0 else 0.0)
                         for c in range(18)])

    # photo 0 is sure it is a man; photo 1 leans female but is unsure; photo 2 leans male
    probs = np.stack([photo(0.05), photo(0.55), photo(0.3)])
    _, gender, _ = marginals(pool_groups(probs, np.zeros(3, dtype=int)))
    assert gender[0].tolist() == [0.95, 0.05] and gender[1].argmax() == 0  # pooled: now male
    edge = np.zeros((2, 18))
    edge[0, encode(0, 1, 0)] = 0.9  # exactly 90 % female: sure enough to keep
    edge[0, encode(0, 0, 0)] = 0.1
    edge[1, encode(0, 0, 0)] = 0.6
    edge[1, encode(0, 1, 0)] = 0.4
    _, gender, _ = marginals(pool_groups(edge, np.zeros(2, dtype=int)))
    assert np.allclose(gender[0], [0.1, 0.9])
    # a joint that is not a product of its marginals: pooling reweights it and rows still sum to 1
    joint = np.zeros((2, 18))
    joint[0, encode(0, 1, 2)] = joint[0, encode(2, 0, 0)] = 0.5
    joint[1, encode(1, 0, 0)] = 0.8
    joint[1, encode(1, 1, 2)] = 0.2
    pooled = pool_groups(joint, np.zeros(2, dtype=int))
    assert np.allclose(pooled.sum(axis=1), 1.0) and pooled[0].argmax() == encode(2, 0, 0)


def test_the_paired_difference_matches_scikit_learn_per_resample():
    from sklearn.metrics import f1_score

    from utils.bootstrap import paired_f1_delta, resample_counts, resampled_images

    rng = np.random.default_rng(1)
    people = np.repeat(np.arange(30), 7)
    y = rng.integers(0, 18, len(people))
    a = np.where(rng.random(len(y)) < 0.6, y, rng.integers(0, 18, len(y)))
    b = np.where(rng.random(len(y)) < 0.8, y, a)
    delta, low, high = paired_f1_delta(y, a, b, people, n_resamples=200, seed=5)

    def f1(t, p):
        return f1_score(t, p, average="macro", zero_division=0)
    assert delta == pytest.approx(f1(y, b) - f1(y, a))
    counts = resample_counts(30, 200, np.random.default_rng(5))  # the same draws the function makes
    by_hand = []
    for row in counts:
        rows = resampled_images(people, row)
        by_hand.append(f1(y[rows], b[rows]) - f1(y[rows], a[rows]))
    assert (low, high) == pytest.approx(tuple(np.percentile(by_hand, [2.5, 97.5])))
    assert paired_f1_delta(y, a, a, people) == (0.0, 0.0, 0.0)


REPORT = {"photos": 70, "people": 10, "groups": 10, "purity": 1.0, "completeness": 1.0, "f1": 0.5,
          "f1_pooled": 0.52, "delta": 0.02}


@pytest.mark.parametrize(("low", "high", "mode", "pooled"), [
    (0.005, 0.04, "auto", True), (-0.01, 0.05, "auto", False), (-0.01, 0.05, "always", True),
    (-0.08, -0.01, "auto", False), (0.0, 0.04, "auto", False),  # an interval touching zero shows no gain
])
def test_pooling_stands_down_unless_validation_shows_a_gain_beyond_noise(caplog, low, high, mode, pooled):
    import logging

    from predict.pooled_prediction import use_pooling

    with caplog.at_level(logging.INFO, logger="predict.pooled_prediction"):
        assert use_pooling({**REPORT, "delta_low": low, "delta_high": high}, mode) is pooled
    (line,) = caplog.messages
    why = f"no gain beyond noise on validation (+0.0200, 95 % CI {low:+.4f} … {high:+.4f}, 10 people)"
    if low > 0:
        assert line == ("--group-people: pooling beat per-photo prediction on validation beyond noise; the "
                        "submission is pooled") and caplog.records[0].levelname == "INFO"
    elif mode == "always":
        assert line == f"--group-people always: {why}; the submission is pooled as asked"
    else:
        assert line == (f"--group-people: {why}; the submission is the plain per-photo prediction (groups.csv "
                        "written; --group-people always pools anyway)")


def test_without_validation_people_pooling_stands_down_unless_asked(caplog):
    from predict.pooled_prediction import use_pooling

    assert use_pooling(None, "auto") is False and use_pooling(None, "always") is True
    assert caplog.messages[1] == ("--group-people always: no validation people to measure it on; the submission "
                                  "is pooled as asked")


def test_inference_writes_the_plain_prediction_when_pooling_stands_down(demo_data, tmp_path, monkeypatch):
    import pandas as pd

    import inference
    from helpers import small_eval, untrained_checkpoint
    from predict import pooled_prediction

    ckpt = untrained_checkpoint(demo_data, tmp_path / "run" / "best.pth")
    eval_dir = small_eval(demo_data, tmp_path, 14)
    report = {**REPORT, "delta_low": -0.01, "delta_high": 0.05}
    monkeypatch.setattr(pooled_prediction, "validation_report", lambda *a, **k: report)
    common = ["--ckpt", str(ckpt), "--data", str(eval_dir)]
    plain = pd.read_csv(inference.main([*common, "--out", str(tmp_path / "plain.csv")]))
    kept = inference.main([*common, "--group-people", "--out", str(tmp_path / "kept.csv"),
                           "--probs", str(tmp_path / "probs.csv")])
    forced = inference.main([*common, "--group-people", "always", "--out", str(tmp_path / "forced.csv"),
                             "--probs", str(tmp_path / "forced_probs.csv")])
    assert pd.read_csv(kept).equals(plain) and (tmp_path / "groups.csv").is_file()
    assert not any(c.startswith("pooled_") for c in pd.read_csv(tmp_path / "probs.csv").columns)  # nothing pooled
    groups = pd.read_csv(tmp_path / "groups.csv")
    merged = pd.read_csv(forced).merge(groups, on="ImageID")
    assert (merged.assign(ga=merged["ans"] % 6).groupby("group")["ga"].nunique() == 1).all()  # pooled per group
    probs = pd.read_csv(tmp_path / "forced_probs.csv")
    pooled, per_photo = probs.filter(like="pooled_").to_numpy(), probs.filter(like="prob_").to_numpy()
    assert pooled.shape == per_photo.shape and not np.allclose(pooled, per_photo)


def label_of(path: str) -> int:
    """The competition label from a training photo's folder name and stem (an oracle independent of the split)."""
    from pathlib import Path

    from utils.labels import MASK_BY_STEM, age_group

    _, gender, _, age = Path(path).parent.name.split("_")
    return encode(MASK_BY_STEM[Path(path).stem], ("male", "female").index(gender), age_group(int(age)))


def test_the_validation_report_scores_the_checkpoints_validation_people_with_and_without_pooling(
        demo_data, monkeypatch):
    from sklearn.metrics import f1_score

    from helpers import ROOT, tiny_overrides
    from predict import pooled_prediction
    from utils.config import load_config

    config = load_config(ROOT / "configs/demo.yaml", tiny_overrides(demo_data, demo_data / "unused"))
    seen = {}

    def predicted(model, cfg, paths, dirs, *, source, **kwargs):
        seen.update(paths=list(paths), dirs=dirs, source=source, kwargs=kwargs)
        rng = np.random.default_rng(0)
        probs = rng.dirichlet(np.ones(18) * 0.3, size=len(paths))
        probs[np.arange(len(paths)) % 3 == 0, [label_of(p) for p in paths][::3]] += 5  # a third right
        return probs / probs.sum(1, keepdims=True)

    state = {"config": "of the run"}

    def rebuilt(given, source):
        assert given is state and source == "ck.pth"
        return "net", config

    def predicted_by_the_net(model, cfg, *args, **kwargs):
        assert model == "net" and cfg is config
        return predicted(model, cfg, *args, **kwargs)

    monkeypatch.setattr(pooled_prediction, "model_from_checkpoint", rebuilt)
    monkeypatch.setattr(pooled_prediction, "predict_paths", predicted_by_the_net)
    report = pooled_prediction.validation_report(state, "ck.pth", group_size=7.0, device="cpu", tta=True)
    paths = seen["paths"]
    labels = np.array([label_of(p) for p in paths])
    people = [p.split("/")[-2].split("_")[0] for p in paths]
    assert seen["source"] == "ck.pth" and seen["kwargs"] == {"device": "cpu", "tta": True}
    assert seen["dirs"] == [Path(config.data.train_dir)]
    assert report["photos"] == len(paths) == 7 * report["people"] and report["people"] == len(set(people)) > 0
    probs = predicted(None, None, paths, None, source="")
    groups = pooled_prediction.grouped(probs, pooled_prediction.photo_statistics_of(paths), 7.0)
    pooled = pool_groups(probs, groups)
    assert report["groups"] == len(set(groups))
    assert report["f1"] == pytest.approx(f1_score(labels, probs.argmax(1), average="macro"))
    assert report["f1_pooled"] == pytest.approx(f1_score(labels, pooled.argmax(1), average="macro"))
    assert report["purity"] == purity(groups, people) and report["completeness"] == completeness(groups, people)
    assert report["delta"] == pytest.approx(report["f1_pooled"] - report["f1"])
    assert report["delta_low"] <= report["delta"] <= report["delta_high"]
    none = config.model_copy(update={"data": config.data.model_copy(update={"val_ratio": 0.0})})
    monkeypatch.setattr(pooled_prediction, "model_from_checkpoint", lambda state, source: ("net", none))
    assert pooled_prediction.validation_report({}, "ck.pth", group_size=7.0) is None


def test_the_validation_line_gives_every_figure_and_no_people_is_a_warning(caplog):
    import logging

    from predict.pooled_prediction import log_validation

    with caplog.at_level(logging.INFO, logger="predict.pooled_prediction"):
        log_validation({**REPORT, "photos": 70, "groups": 9, "purity": 0.9, "completeness": 0.8, "f1": 0.5,
                        "f1_pooled": 0.52, "delta_low": -0.01, "delta_high": 0.05}, Path("run/best.pth"))
        log_validation(None, Path("run/best.pth"))
    assert caplog.messages[0] == ("--group-people on the 70 validation photos of run/best.pth (10 people -> 9 "
                                  "groups): purity 0.900, completeness 0.800; macro-F1 0.5000 per photo, 0.5200 "
                                  "pooled per group (+0.0200, 95 % CI -0.0100 … +0.0500)")
    assert caplog.records[1].levelname == "WARNING" and caplog.messages[1] == (
        "--group-people: run/best.pth has no validation people (data.val_ratio=0): grouping not measured")


def test_groups_are_written_in_info_csv_order(tmp_path):
    import pandas as pd

    from predict.pooled_prediction import write_groups

    table = pd.DataFrame({"ImageID": ["c.jpg", "a.jpg", "b.jpg"]})
    out = write_groups(table, np.array([2, 0, 2]), tmp_path / "groups.csv")
    assert out.read_text() == "ImageID,group\nc.jpg,2\na.jpg,0\nb.jpg,2\n"


def test_photos_group_by_their_statistics_and_the_networks_view_of_the_person_together():
    """28 photos: two kinds of photo border (statistics) crossed with two confidently seen genders; four groups
    of 7 are exactly the four combinations, which neither part alone can tell apart."""
    from sklearn.metrics import adjusted_rand_score

    from predict.pooled_prediction import grouped

    rng = np.random.default_rng(0)
    border = np.repeat([0, 1], 14)
    gender = np.tile(np.repeat([0, 1], 7), 2)
    statistics = border[:, None] * 10.0 + rng.normal(0, 0.01, (28, 6))
    probs = np.full((28, 18), 0.001)
    probs[np.arange(28), [encode(0, g, 1) for g in gender]] = 1.0
    probs /= probs.sum(1, keepdims=True)
    groups = grouped(probs, statistics, group_size=7.0)
    assert adjusted_rand_score(border * 2 + gender, groups) == 1.0


def test_photo_statistics_come_from_a_small_draft_decode(tmp_path, monkeypatch):
    from PIL import Image

    from predict import pooled_prediction

    Image.new("RGB", (384, 512), (90, 120, 150)).save(tmp_path / "a.jpg")
    asked = []
    real = pooled_prediction.load_image
    monkeypatch.setattr(pooled_prediction, "load_image", lambda path, size: asked.append(size) or real(path, size))
    statistics = pooled_prediction.photo_statistics_of([str(tmp_path / "a.jpg")] * 2)
    assert asked == [pooled_prediction.STATS_SIZE] * 2 and statistics.shape[0] == 2
    assert np.allclose(statistics[0], photo_statistics(real(str(tmp_path / "a.jpg"), None)), atol=2.0)


@pytest.mark.parametrize("split", [{"data.split_seed": 7}, {"data.n_folds": 3, "data.fold": 2}])
def test_the_validation_photos_are_those_of_the_runs_own_split(demo_data, tmp_path, split):
    from helpers import ROOT, tiny_overrides
    from predict.pooled_prediction import validation_photos
    from trainer.build import build_loaders
    from utils.config import load_config
    from utils.dist_info import DistInfo

    config = load_config(ROOT / "configs/demo.yaml", tiny_overrides(demo_data, tmp_path, seed=3, **split))
    paths, labels, people = validation_photos(config)
    _, val = build_loaders(config, DistInfo(), pin_memory=False)
    assert sorted(paths) == sorted(val.dataset.paths) and len(paths) > 0
    assert [label_of(p) for p in paths] == labels.tolist()
    assert list(people) == [p.split("/")[-2].split("_")[0] for p in paths]
