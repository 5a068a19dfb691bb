"""utils/predictions.py: the one format of val_predictions.csv and oof.csv, written and read back, and every way a
damaged file is one line naming it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import one_hot
from utils.errors import DataError
from utils.predictions import (
    predictions_frame,
    read_predictions,
    read_probability_frame,
    write_predictions,
)
from utils.run_dir import PROB_COLUMNS

PATHS = ["images/000002_male_Asian_20/mask1.jpg", "images/000001_female_Asian_45/normal.jpg",
         "images/000001_female_Asian_45/mask2.jpg"]


def written(tmp_path, frame: pd.DataFrame, name: str = "val_predictions.csv"):
    path = tmp_path / name
    write_predictions(path, frame)
    return path


def test_a_frame_has_the_documented_columns_with_whole_class_ids_and_its_fold_second(tmp_path):
    frame = predictions_frame(PATHS, np.array([3.0, 4.0, 17.0]), one_hot([3, 5, 17]), fold=2)
    assert list(frame.columns) == ["path", "fold", "person", "label", "pred", *PROB_COLUMNS]
    assert frame["fold"].tolist() == [2, 2, 2] and frame["label"].dtype == np.int64
    assert frame["person"].tolist() == ["000002_male_Asian_20", "000001_female_Asian_45", "000001_female_Asian_45"]
    text = written(tmp_path, frame).read_text().splitlines()
    assert text[0].startswith("path,fold,person,label,pred,prob_00,") and text[1].split(",")[3] == "3"
    assert list(predictions_frame(PATHS, [1, 2, 3], one_hot([1, 2, 3])).columns[:4]) == ["path", "person",
                                                                                              "label", "pred"]


def test_read_back_sorted_by_photo_with_people_and_predictions(tmp_path):
    path = written(tmp_path, predictions_frame(PATHS, [3, 4, 17], one_hot([3, 5, 17])))
    got = read_predictions(path)
    assert got.paths.tolist() == sorted(PATHS) and got.source == path
    order = [PATHS.index(p) for p in sorted(PATHS)]
    assert got.labels.tolist() == [[3, 4, 17][i] for i in order]
    assert got.preds.tolist() == [[3, 5, 17][i] for i in order]
    assert got.n_people == 2 and len(got) == 3


def test_ids_are_text_and_a_header_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("\ufeffpath , person,label,pred\n0042,0042,1,1\n42,42,2,2\n", encoding="utf-8")
    got = read_predictions(path)
    assert got.paths.tolist() == ["0042", "42"] and got.people.tolist() == ["0042", "42"] and got.n_people == 2


def test_pred_comes_from_the_probabilities_when_the_column_is_missing(tmp_path):
    frame = predictions_frame(PATHS, [3, 4, 17], one_hot([6, 7, 8])).drop(columns=["pred"])
    got = read_predictions(written(tmp_path, frame))
    assert sorted(got.preds.tolist()) == [6, 7, 8]
    no_probs = frame.drop(columns=["prob_07"])
    with pytest.raises(DataError) as err:
        read_predictions(written(tmp_path, no_probs, "x.csv"))
    assert str(err.value) == f"{tmp_path / 'x.csv'}: missing column 'pred' (and no prob_00..prob_17 to take it from)"


def test_a_frame_already_read_is_not_read_again(tmp_path):
    frame = predictions_frame(PATHS, [3, 4, 17], one_hot([3, 5, 17]))
    got = read_predictions(tmp_path / "never_written.csv", frame)
    assert got.labels.tolist() == [17, 4, 3]  # sorted by path


@pytest.mark.parametrize("cell", ["nan", "2.5", "-1", "18", "x", "inf"])
def test_a_class_id_outside_0_to_17_or_not_whole_names_file_line_and_cell(tmp_path, cell):
    frame = predictions_frame(PATHS, [3, 4, 17], one_hot([3, 5, 17])).astype({"label": str})
    frame.loc[1, "label"] = cell
    path = written(tmp_path, frame)
    with pytest.raises(DataError) as err:
        read_predictions(path)
    assert str(err.value) == f"{path}: line 3: label {cell!r} is not a class id 0-17"


def test_whole_numbers_written_as_floats_are_class_ids(tmp_path):
    frame = predictions_frame(PATHS, [3, 4, 17], one_hot([3, 5, 17])).astype({"label": float})
    assert read_predictions(written(tmp_path, frame)).labels.tolist() == [17, 4, 3]


def test_damaged_files_are_one_line_naming_them(tmp_path):
    with pytest.raises(DataError) as err:
        read_predictions(tmp_path / "missing.csv")
    assert str(err.value) == f"{tmp_path / 'missing.csv'}: not found"
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError) as err:
        read_predictions(tmp_path / "empty.csv")
    assert str(err.value) == f"{tmp_path / 'empty.csv'}: cannot parse CSV (EmptyDataError)"
    (tmp_path / "ragged.csv").write_text('path,label\n"a,1\n')
    with pytest.raises(DataError, match=r"ragged.csv: cannot parse CSV \(ParserError\)$"):
        read_predictions(tmp_path / "ragged.csv")


def test_the_first_photo_listed_twice_is_named(tmp_path):
    frame = predictions_frame(["a/1.jpg", "b/2.jpg", "a/1.jpg", "b/2.jpg"], [1, 2, 1, 2], one_hot([1, 2, 1, 2]))
    path = written(tmp_path, frame)
    with pytest.raises(DataError) as err:
        read_predictions(path)
    assert str(err.value) == f"{path}: photo a/1.jpg listed twice"


def test_probabilities_are_checked_cell_by_cell(tmp_path):
    frame = predictions_frame(PATHS, [3, 4, 17], one_hot([3, 5, 17]))
    frame.loc[2, "prob_04"] = 0.0  # zero is a probability
    assert 0.0 in read_probability_frame(written(tmp_path, frame))["prob_04"].tolist()
    for bad in (-0.1, float("nan"), "x"):
        damaged = frame.astype({"prob_04": object})
        damaged.loc[2, "prob_04"] = bad
        path = written(tmp_path, damaged, "bad.csv")
        with pytest.raises(DataError) as err:
            read_probability_frame(path)
        assert str(err.value) == f"{path}: line 4: probabilities are not finite and >= 0"
    path = written(tmp_path, frame.drop(columns=["prob_05", "prob_09"]), "few.csv")
    with pytest.raises(DataError) as err:
        read_probability_frame(path)
    assert str(err.value) == f"{path}: missing column 'prob_05'"


def test_a_probability_frame_is_sorted_typed_and_read_once(tmp_path, monkeypatch):
    import utils.predictions as predictions

    frame = predictions_frame(PATHS, [3, 4, 17], one_hot([3, 5, 17]), fold=1).drop(columns=["person"])
    frame.loc[1, "prob_04"] = 0.0
    path = written(tmp_path, frame, "oof.csv")
    reads = []
    real = predictions.read_frame
    monkeypatch.setattr(predictions, "read_frame", lambda source: reads.append(source) or real(source))
    got = read_probability_frame(path, integer_columns=("fold",))
    assert reads == [path]
    assert list(got.columns) == ["path", "fold", "label", "pred", *PROB_COLUMNS, "person"]  # an older file's person
    assert got["path"].tolist() == sorted(PATHS) and got.index.tolist() == [0, 1, 2]
    assert got["person"].tolist() == [p.split("/")[1] for p in sorted(PATHS)]  # from the path in older files
    assert got["label"].tolist() == [17, 4, 3] and got["label"].dtype == np.int64
    assert got["pred"].tolist() == [17, 5, 3] and got["pred"].dtype == np.int64
    assert got["fold"].dtype == np.int64 and got["fold"].tolist() == [1, 1, 1]
    assert got.loc[got["path"] == PATHS[1], "prob_04"].item() == 0.0


@pytest.mark.parametrize("cell, shown", [("x", "'x'"), ("1.5", "'1.5'"), ("-1", "'-1'"), ("", "''")])
def test_an_integer_column_that_is_not_a_whole_number_names_its_line(tmp_path, cell, shown):
    frame = predictions_frame(PATHS, [3, 4, 17], one_hot([3, 5, 17]), fold=0).astype({"fold": str})
    frame.loc[0, "fold"] = cell
    path = written(tmp_path, frame, "oof.csv")
    with pytest.raises(DataError) as err:
        read_probability_frame(path, integer_columns=("fold",))
    assert str(err.value) == f"{path}: line 2: fold {shown} is not a whole number"
    with pytest.raises(DataError) as err:
        read_probability_frame(written(tmp_path, frame.drop(columns=["fold"]), "nofold.csv"),
                               integer_columns=("fold",))
    assert str(err.value) == f"{tmp_path / 'nofold.csv'}: missing column 'fold'"


def test_a_bad_probability_in_a_file_without_pred_names_the_file(tmp_path):
    frame = predictions_frame(PATHS, [3, 4, 17], one_hot([3, 5, 17])).drop(columns=["pred"]).astype({"prob_02": str})
    frame.loc[0, "prob_02"] = "x"
    path = written(tmp_path, frame)
    with pytest.raises(DataError) as err:
        read_predictions(path)
    assert str(err.value) == f"{path}: line 2: probabilities are not finite and >= 0"
