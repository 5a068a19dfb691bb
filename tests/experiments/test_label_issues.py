"""The label-issue finder (experiments/label_issues.py, tools/label_issues.py) and planted noise."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.label_issues import draft, find_label_issues
from helpers import fails_in_one_line
from tools import label_issues
from utils.labels import MASK_BY_STEM, age_group, encode
from utils.run_dir import PROB_COLUMNS, RunDir

STEMS = list(MASK_BY_STEM)


def person_rows(pid, gender, age, true_gender=None, true_age=None, swapped=False, confidence=0.8, root="/d"):
    """The 7 photos of a person: written labels in the folder name and `label`; probabilities that point to
    the true labels with `confidence`."""
    true_gender = gender if true_gender is None else true_gender
    true_age = age if true_age is None else true_age
    folder = f"{pid}_{('male', 'female')[gender]}_Asian_{age}"
    rows = []
    for stem in STEMS:
        mask = MASK_BY_STEM[stem]
        true_mask = {1: 2, 2: 1}.get(mask, mask) if swapped else mask
        probs = np.full(18, (1 - confidence) / 17)
        probs[encode(true_mask, true_gender, age_group(true_age))] = confidence
        rows.append({"path": f"{root}/images/{folder}/{stem}.jpg", "person": folder,
                     "label": encode(mask, gender, age_group(age)), **dict(zip(PROB_COLUMNS, probs))})
    return rows


def frame_of(*people):
    return pd.DataFrame([row for person in people for row in person])


def clean_people(n, start=0):
    rng = np.random.default_rng(start)
    return [person_rows(f"{k:06d}", int(rng.integers(2)), int(rng.choice([22, 40, 60])))
            for k in range(start, start + n)]


def test_planted_people_are_found_with_the_right_suggestion_and_clean_people_are_not():
    frame = frame_of(*clean_people(30),
                     person_rows("900001", gender=0, age=40, true_gender=1),
                     person_rows("900002", gender=1, age=22, true_age=45),
                     person_rows("900003", gender=0, age=40, swapped=True))
    table = find_label_issues(frame)
    assert table[["id", "field", "suggested"]].values.tolist() == [
        ["900001", "gender", "female"], ["900002", "age", "30-59"], ["900003", "swap_mask", "swapped"]]
    assert table["score"].min() > 0.85 and not table["near_boundary"].any()
    fixes = draft(table, threshold=0.8, source="RUN")
    assert fixes.values.tolist() == [["900001", "gender", "female", "RUN"], ["900002", "age", "45", "RUN"],
                                     ["900003", "swap_mask", "swap", "RUN"]]


def test_a_person_is_judged_on_the_mean_of_its_photos_log_probabilities():
    """3 photos sure of female, 4 mildly male: the pooled probability is the renormalised geometric mean."""
    rows = person_rows("000001", gender=0, age=40)
    p_female = [0.99, 0.99, 0.99, 0.4, 0.4, 0.4, 0.4]
    for row, p in zip(rows, p_female):
        probs = np.zeros(18)
        probs[encode(0, 1, 1)], probs[encode(0, 0, 1)] = p, 1 - p
        row.update(dict(zip(PROB_COLUMNS, probs)))
    (suspect,) = find_label_issues(frame_of(rows)).to_dict("records")
    female, male = np.exp(np.mean(np.log(p_female))), np.exp(np.mean(np.log(1 - np.array(p_female))))
    expected = female / (female + male)  # the renormalised geometric means, by hand
    assert suspect["field"] == "gender" and suspect["score"] == pytest.approx(expected)
    assert suspect["disagree"] == 3  # photos whose own argmax is the other gender
    assert suspect["mean_prob"] == pytest.approx(np.mean(p_female))


def test_a_swap_needs_both_photos_to_point_the_other_way():
    one_sided = person_rows("000002", gender=0, age=40)
    normal = next(r for r in one_sided if "/normal." in r["path"])
    probs = np.zeros(18)
    probs[encode(1, 0, 1)] = 1.0  # the normal photo looks incorrect, the incorrect photo still looks incorrect
    normal.update(dict(zip(PROB_COLUMNS, probs)))
    assert find_label_issues(frame_of(one_sided)).empty
    assert find_label_issues(frame_of(person_rows("000003", 0, 40, swapped=True)))["field"].tolist() == ["swap_mask"]


def test_ages_near_the_suggested_group_are_listed_but_never_drafted():
    frame = frame_of(person_rows("000004", gender=0, age=58, true_age=60),
                     person_rows("000005", gender=0, age=20, true_age=60),
                     person_rows("000006", gender=1, age=60, true_age=45))
    table = find_label_issues(frame).set_index("id")
    assert table.loc["000004", "near_boundary"] and table.loc["000006", "near_boundary"]
    assert not table.loc["000005", "near_boundary"] and table.loc["000005", "written"] == "<30 (20)"
    assert draft(table.reset_index(), 0.5, "RUN")[["id", "value"]].values.tolist() == [["000005", "60"]]


def test_the_draft_round_trips_through_data_relabel(tmp_path):
    from data_loader.relabel import apply_fixes

    frame = frame_of(person_rows("000010", gender=0, age=40, true_gender=1),
                     person_rows("000011", gender=1, age=22, true_age=60),
                     person_rows("000012", gender=0, age=40, swapped=True), *clean_people(5, start=20))
    path = tmp_path / "relabel_draft.csv"
    draft(find_label_issues(frame), 0.8, "RUN").to_csv(path, index=False)
    images = pd.DataFrame({"person_id": frame["person"].str[:6], "mask": [MASK_BY_STEM[p.rsplit("/", 1)[1][:-4]]
                                                                          for p in frame["path"]],
                           "gender": frame["label"] // 3 % 2, "age_group": frame["label"] % 3, "age": 0})
    fixed = apply_fixes(images, path, age_bounds=(30, 60))
    truth = np.array([int(np.argmax(r)) for r in frame[PROB_COLUMNS].to_numpy()])
    assert (fixed["label"].to_numpy() == truth).all()


@pytest.mark.parametrize("edit, expected", [
    (lambda t: t.replace("000010,gender", "000099,gender"), "line 2: id '000099' is not a person"),
    (lambda t: t.replace("000010,gender,female", "000010,gender,fmale"), "line 2: gender 'fmale'"),
    (lambda t: t.replace(",age,", ",agee,"), "field 'agee'"),
])
def test_an_edited_draft_with_an_unknown_id_or_a_bad_row_is_one_line(demo_data, tmp_path, capsys, edit, expected):
    import train
    from helpers import ROOT, tiny_overrides

    path = tmp_path / "relabel_draft.csv"
    path.write_text(edit("id,field,value,source\n000010,gender,female,RUN\n000011,age,45,RUN\n"))
    fails_in_one_line(train.main, ["--config", str(ROOT / "configs/demo.yaml"),
                                   *tiny_overrides(demo_data, tmp_path / "saved", **{"data.relabel": path})],
                      capsys, str(path), expected)
    assert not (tmp_path / "saved").exists()


def kfold_run(tmp_path, frame, **config):
    import yaml

    run = RunDir(tmp_path / "run")
    (run.path / "folds").mkdir(parents=True)
    frame.assign(fold=0, pred=frame[PROB_COLUMNS].to_numpy().argmax(axis=1)).to_csv(run.oof, index=False)
    run.config.write_text(yaml.safe_dump({"data": {"relabel": None, **config}}))
    return run


def test_the_command_writes_its_own_files_atomically_and_touches_nothing_else(tmp_path, caplog):
    frame = frame_of(*clean_people(5), person_rows("900001", gender=0, age=40, true_gender=1, confidence=0.95),
                     person_rows("900002", gender=0, age=40, true_gender=1, confidence=0.6))  # under the default
    run = kfold_run(tmp_path, frame)
    before = {p: p.read_bytes() for p in run.path.rglob("*") if p.is_file()}
    out = label_issues.main([str(run.path)])
    assert out["table"]["id"].tolist() == ["900001", "900002"]
    assert [p.name for p in out["pages"]] == ["label_issues.png"]
    assert pd.read_csv(run.relabel_draft, dtype=str).values.tolist() == [["900001", "gender", "female", str(run.path)]]
    assert {p: p.read_bytes() for p in before} == before  # oof.csv, config.yaml untouched
    written = {p.name for p in run.path.iterdir() if p.is_file()} - {p.name for p in before}
    assert written == {"label_issues.csv", "label_issues.png", "relabel_draft.csv"}


def test_runs_it_cannot_read_explain_themselves_in_one_line(tmp_path, capsys, caplog):
    frame = frame_of(*clean_people(3))
    relabelled = kfold_run(tmp_path / "a", frame, relabel="/x/fixes.csv")
    fails_in_one_line(label_issues.main, [str(relabelled.path)], capsys, "data.relabel=/x/fixes.csv")
    (tmp_path / "empty").mkdir()
    fails_in_one_line(label_issues.main, [str(tmp_path / "empty")], capsys, "no oof.csv", "--all-folds")
    single = RunDir(tmp_path / "single")
    single.path.mkdir()
    frame.assign(pred=0).to_csv(single.val_predictions, index=False)
    with caplog.at_level("WARNING"):
        label_issues.main([str(single.path), "--no-sheet"])
    assert any("only the validation people are checked" in m for m in caplog.messages)
    with pytest.raises(SystemExit) as exit_info:
        label_issues.main([str(single.path), "--threshold", "0.3"])
    assert exit_info.value.code == 2 and "--threshold 0.3: must be in [0.5, 1]" in capsys.readouterr().err


def test_planted_noise_is_listed_beside_the_data_and_eval_labels_stay_true(tmp_path):
    from tools.synthetic import PLANTED_FILE, Noise, generate

    generate(tmp_path / "noisy", 40, 2, seed=3, noise=Noise(gender=0.2, age=0.2, swap=0.2))
    generate(tmp_path / "clean", 40, 2, seed=3)
    planted = pd.read_csv(tmp_path / "noisy" / PLANTED_FILE, dtype=str)
    assert set(planted["field"]) == {"gender", "age", "swap_mask"} and 6 <= len(planted) <= 30
    noisy, clean = (pd.read_csv(tmp_path / d / "train" / "train.csv", dtype=str).set_index("id") for d in ("noisy",
                                                                                                          "clean"))
    assert not (tmp_path / "clean" / PLANTED_FILE).exists()
    for row in planted.itertuples():
        column = {"gender": "gender", "age": "age"}.get(row.field)
        if column:  # the written value is the planted one, the clean data set holds the true one
            assert noisy.loc[row.id, column] == row.written and clean.loc[row.id, column] == row.true
    untouched = sorted(set(noisy.index) - set(planted["id"]))
    assert noisy.loc[untouched, ["gender", "age"]].equals(clean.loc[untouched, ["gender", "age"]])
    assert (tmp_path / "noisy" / "eval_truth.csv").read_bytes() == (tmp_path / "clean" / "eval_truth.csv").read_bytes()
    swapped = planted.loc[planted["field"] == "swap_mask", "id"].iloc[0]
    folder = noisy.loc[swapped, "path"]
    a = (tmp_path / "noisy" / "train" / "images" / folder)
    b = (tmp_path / "clean" / "train" / "images" / clean.loc[swapped, "path"])
    normal = next(a.glob("normal.*")).read_bytes()
    assert normal == next(b.glob("incorrect_mask.*")).read_bytes()  # the photo under the wrong name
