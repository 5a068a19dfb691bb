import shutil

import numpy as np
import pandas as pd
import pytest

from tools.data_report import build_report, main
from utils.labels import age_group, encode, gender_id


def test_report_counts_match_planted_problems(demo_data, tmp_path):
    train = tmp_path / "train"
    shutil.copytree(demo_data / "train", train)
    people = pd.read_csv(train / "train.csv", dtype=str)
    folders = [train / "images" / p for p in people["path"]]
    junk = {f: sum(1 for p in f.iterdir() if p.name.startswith("._")) for f in folders}

    next(folders[0].glob("normal.*")).unlink()                      # missing -> person 0 left out
    next(folders[1].glob("mask2.*")).write_bytes(b"")               # unreadable -> one image left out
    (folders[2] / "selfie.jpg").write_bytes(b"x")                   # unexpected name
    (folders[2] / "._normal.jpg").write_bytes(b"junk")              # junk
    twin = people.iloc[3].copy()                                   # the same person twice
    twin["id"], twin["path"] = "999999", f"999999_{twin['gender']}_Asian_{twin['age']}"
    shutil.copytree(folders[3], train / "images" / twin["path"])
    pd.concat([people, twin.to_frame().T]).to_csv(train / "train.csv", index=False)

    report = build_report(tmp_path, tmp_path / "report", val_ratio=0.25, seed=0)

    kinds = pd.Series([p.kind for p in report["problems"]]).value_counts().to_dict()
    assert kinds.get("missing") == 1 and kinds.get("unreadable") == 1 and kinds.get("unexpected") == 1
    assert kinds.get("junk") == sum(junk.values()) + 1 + junk[folders[3]]  # the twin copies person 3's junk
    assert (people.iloc[3]["id"], "999999") in {(a, b) for a, b, _ in report["duplicates"]}

    expected = np.zeros(18, dtype=int)
    everyone = pd.concat([people, twin.to_frame().T]).reset_index(drop=True)
    for k, person in everyone.iterrows():
        if k == 0:
            continue
        g, a = gender_id(person["gender"]), age_group(int(person["age"]))
        for mask, n in ((0, 5), (1, 1), (2, 1)):
            expected[encode(mask, g, a)] += n
    expected[encode(0, gender_id(people.iloc[1]["gender"]), age_group(int(people.iloc[1]["age"])))] -= 1
    assert report["class_counts"].tolist() == expected.tolist()
    assert int(report["people"].to_numpy().sum()) == len(everyone) - 1
    assert report["balance"].to_numpy().sum() == expected.sum()
    assert {p.name for p in report["charts"]} == {
        "people_per_group.png", "images_per_class.png", "age_histogram.png", "split_balance.png"}
    assert all(p.stat().st_size > 1000 for p in report["charts"])


def test_report_cli_prints_summary(demo_data, capsys):
    main(["--data", str(demo_data / "train")])
    out = capsys.readouterr().out
    assert "people per gender x age group" in out and "near-duplicate people: 0" in out


def test_face_section_rates_per_mask_state_and_a_crop_grid(demo_data, tmp_path, monkeypatch):
    from data_loader import faces

    train = tmp_path / "train"
    shutil.copytree(demo_data / "train", train)
    assert build_report(tmp_path, None)["faces"] is None  # no faces.csv and not asked: no face section

    monkeypatch.setitem(faces.DETECTORS, "mtcnn", lambda: (lambda image: [((10.0, 10.0, 20.0, 20.0), 0.9)]))
    table = faces.update_face_table(train, "mtcnn", workers=0)
    masked = ~table["path"].str.contains("/normal")
    table.loc[masked, "score"] = 0.0  # a face in the unmasked photos only: known rates per state
    table.to_csv(train / faces.FACES_FILE, index=False)

    report = build_report(tmp_path, tmp_path / "report")
    people = len(pd.read_csv(train / "train.csv"))
    rates = report["faces"]
    assert rates["images"].tolist() == [5 * people, people, people]
    assert rates["faces"].tolist() == [0, 0, people] and rates["rate"].tolist() == [0.0, 0.0, 1.0]
    assert f"not        {people:6d} / {people:6d}  100.0%" in report["text"]
    assert (tmp_path / "report" / "face_crops.png").is_file()


@pytest.mark.parametrize("argv, message", [
    (["--seed", "-1"], "--seed -1: Input should be greater than or equal to 0"),
    (["--val-ratio", "1.5"], "--val-ratio 1.5: Input should be less than 1"),
    (["--age-bounds", "60", "30"], "--age-bounds [60, 30]: must be two increasing positive ages"),
])
def test_report_arguments_follow_the_config_rules(demo_data, capsys, argv, message):
    from helpers import fails_in_one_line
    from tools import data_report

    fails_in_one_line(data_report.main, ["--data", str(demo_data), *argv], capsys, message)


def test_a_run_name_cannot_leave_save_dir():
    from utils.config import load_config
    from utils.errors import ConfigError

    for name in ("..", "."):
        with pytest.raises(ConfigError, match="outside save_dir"):
            load_config(None, [f"name={name}"])
