"""tools.pooling_check: the grouping's gain next to the ceiling of pooling over the true people."""
import numpy as np
import pandas as pd
import pytest

from helpers import fails_in_one_line
from tools import pooling_check
from utils.labels import encode
from utils.run_dir import PROB_COLUMNS


def made_up(n_people: int = 4):
    """Each person's 7 photos lean 0.6/0.4 to their true gender, except one that leans 0.45/0.55 the wrong way."""
    rows, labels, people = [], [], []
    for person in range(n_people):
        gender = person % 2
        for photo in range(7):
            right, wrong = encode(0, gender, 0), encode(0, 1 - gender, 0)
            p = np.zeros(18)
            p[right], p[wrong] = (0.45, 0.55) if photo == 0 else (0.6, 0.4)
            rows.append(p)
            labels.append(right)
            people.append(f"p{person}")
    return np.array(rows), np.array(labels), np.array(people)


def test_pooling_over_the_true_people_fixes_the_odd_photo_and_singletons_change_nothing():
    probs, labels, people = made_up()
    singletons = np.arange(len(labels))
    figures = pooling_check.pooling_figures(probs, singletons, labels, people)
    assert figures["f1"] < 1.0 and figures["ceiling"]["f1"] == 1.0 and figures["ceiling"]["delta"] > 0
    assert figures["found"]["f1"] == figures["f1"] and figures["found"]["delta"] == 0.0
    assert figures["purity"] == 1.0 and figures["completeness"] == pytest.approx(1 / 7)
    merged = np.repeat([0, 0, 1, 1], 7)  # two people (of both genders) per group
    mixed = pooling_check.pooling_figures(probs, merged, labels, people)
    assert mixed["purity"] == pytest.approx(0.5) and mixed["completeness"] == 1.0
    assert mixed["found"]["f1"] < mixed["ceiling"]["f1"]


def test_the_command_reads_the_three_files_in_the_truths_order_and_names_a_missing_photo(tmp_path, capsys):
    probs, labels, people = made_up()
    ids = [f"{i:03d}.jpg" for i in range(len(labels))]
    pd.DataFrame(probs, columns=PROB_COLUMNS).assign(ImageID=ids)[::-1].to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame({"ImageID": ids, "group": [int(p[1:]) for p in people]}).to_csv(tmp_path / "g.csv", index=False)
    pd.DataFrame({"ImageID": ids, "ans": labels, "person": people}).to_csv(tmp_path / "t.csv", index=False)
    figures = pooling_check.main([str(tmp_path / f) for f in ("p.csv", "g.csv", "t.csv")])
    assert figures["found"]["f1"] == 1.0 and figures["purity"] == 1.0 and figures["completeness"] == 1.0
    out = capsys.readouterr().out
    assert "28 photos of 4 people in 4 groups: purity 1.000, completeness 1.000" in out
    assert "macro-F1 pooled over the true people 1.0000" in out
    pd.DataFrame({"ImageID": ids[1:], "group": 0}).to_csv(tmp_path / "g.csv", index=False)
    fails_in_one_line(pooling_check.main, [str(tmp_path / f) for f in ("p.csv", "g.csv", "t.csv")], capsys,
                      f"{tmp_path / 'g.csv'}: 1 photo(s) of {tmp_path / 't.csv'} missing (first: 000.jpg)")


def test_a_truth_without_people_or_with_a_bad_answer_is_one_line(tmp_path, capsys):
    probs, labels, people = made_up(1)
    ids = [f"{i:03d}.jpg" for i in range(len(labels))]
    pd.DataFrame(probs, columns=PROB_COLUMNS).assign(ImageID=ids).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame({"ImageID": ids, "group": 0}).to_csv(tmp_path / "g.csv", index=False)
    argv = [str(tmp_path / f) for f in ("p.csv", "g.csv", "t.csv")]
    pd.DataFrame({"ImageID": ids, "ans": ["x", *labels[1:]], "person": people}).to_csv(tmp_path / "t.csv", index=False)
    fails_in_one_line(pooling_check.main, argv, capsys, "t.csv: line 2: ans 'x' is not a class id")
    pd.DataFrame({"ImageID": ids, "ans": labels}).to_csv(tmp_path / "t.csv", index=False)
    fails_in_one_line(pooling_check.main, argv, capsys, "t.csv: missing column(s) person")
