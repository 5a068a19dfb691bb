"""data_loader.eval_table: info.csv and pseudo-label files resolved to images in file order, errors by line."""
import pandas as pd
import pytest

from data_loader.eval_table import read_eval_table, read_pseudo_labels, submission_frame
from helpers import small_eval
from utils.errors import DataError


@pytest.fixture()
def eval_dir(demo_data, tmp_path):
    return small_eval(demo_data, tmp_path, 4)


def ids(eval_dir):
    return pd.read_csv(eval_dir / "info.csv", dtype=str)["ImageID"].tolist()


def test_info_csv_rows_keep_their_order_and_gain_their_image_paths(eval_dir):
    names = ids(eval_dir)
    reordered = names[::-1]
    (eval_dir / "info.csv").write_text("ImageID,ans\n" + "".join(f"{n},0\n" for n in reordered))
    table = read_eval_table(eval_dir)
    assert table["ImageID"].tolist() == reordered
    assert table["path"].tolist() == [str(eval_dir / "images" / n) for n in reordered]


def test_a_missing_or_broken_eval_image_is_named_with_its_line(eval_dir):
    names = ids(eval_dir)
    (eval_dir / "images" / names[2]).unlink()
    with pytest.raises(DataError, match=rf"info.csv: line 4: image .*{names[2]} not found"):
        read_eval_table(eval_dir)
    (eval_dir / "images" / names[2]).write_bytes(b"")
    with pytest.raises(DataError, match=f"{names[2]}: empty image file"):
        read_eval_table(eval_dir)


def test_an_info_csv_without_rows_is_refused(eval_dir):
    (eval_dir / "info.csv").write_text("ImageID,ans\n")
    with pytest.raises(DataError, match="info.csv: no rows"):
        read_eval_table(eval_dir)


def test_a_repeated_image_id_is_refused_by_line(eval_dir):
    names = ids(eval_dir)
    (eval_dir / "info.csv").write_text(f"ImageID,ans\n{names[0]},0\n{names[1]},0\n{names[0]},0\n")
    with pytest.raises(DataError, match=rf"line 4: ImageID '{names[0]}' appears more than once"):
        read_eval_table(eval_dir)


def test_pseudo_labels_read_as_integers_with_their_image_paths(eval_dir, tmp_path):
    names = ids(eval_dir)
    path = tmp_path / "pseudo.csv"
    path.write_text(f"ImageID,label,probability\n{names[1]},17,0.93\n{names[0]}, 04 ,0.91\n")
    table = read_pseudo_labels(path, eval_dir)
    assert table["ImageID"].tolist() == [names[1], names[0]] and table["label"].tolist() == [17, 4]
    assert table["path"].tolist() == [str(eval_dir / "images" / n) for n in (names[1], names[0])]


@pytest.mark.parametrize("row, message", [("{a},18", "line 2: label '18' is not a class id 0..17"),
                                          ("{a},-1", "line 2: label '-1' is not a class id"),
                                          ("nowhere.jpg,3", "line 2: image nowhere.jpg not found in"),
                                          ("{a},3\n{a},4", "line 3: ImageID '{a}' appears more than once")])
def test_a_bad_pseudo_label_row_is_named(eval_dir, tmp_path, row, message):
    name = ids(eval_dir)[0]
    path = tmp_path / "pseudo.csv"
    path.write_text("ImageID,label\n" + row.format(a=name) + "\n")
    with pytest.raises(DataError, match=message.format(a=name)) as err:
        read_pseudo_labels(path, eval_dir)
    assert str(err.value).startswith(str(path))


def test_a_submission_frame_pairs_each_row_with_its_prediction():
    table = pd.DataFrame({"ImageID": ["b.jpg", "a.jpg"], "path": ["x", "y"]})
    frame = submission_frame(table, [3.0, 17])
    assert frame.columns.tolist() == ["ImageID", "ans"] and frame["ans"].tolist() == [3, 17]
    assert frame["ImageID"].tolist() == ["b.jpg", "a.jpg"] and frame["ans"].dtype.kind == "i"
    with pytest.raises(ValueError, match="1 predictions for 2 rows"):
        submission_frame(table, [3])


def test_a_missing_table_says_which_setting_names_it(eval_dir, tmp_path):
    (eval_dir / "info.csv").unlink()
    with pytest.raises(DataError) as err:
        read_eval_table(eval_dir)
    assert str(err.value) == f"{eval_dir / 'info.csv'}: not found (data.eval_dir must hold info.csv and images/)"
    with pytest.raises(DataError) as err:  # a file setting: no folder hint (it said "must hold ... and images/")
        read_pseudo_labels(tmp_path / "pseudo.csv", eval_dir)
    assert str(err.value) == f"{tmp_path / 'pseudo.csv'}: not found"


def test_class_zero_is_a_pseudo_label_and_a_missing_image_names_the_folder(eval_dir, tmp_path):
    name = ids(eval_dir)[0]
    path = tmp_path / "pseudo.csv"
    path.write_text(f"ImageID,label\n{name},0\n")
    assert read_pseudo_labels(path, eval_dir)["label"].tolist() == [0]
    path.write_text("ImageID,label\nnowhere.jpg,0\n")
    with pytest.raises(DataError) as err:
        read_pseudo_labels(path, eval_dir)
    assert str(err.value) == f"{path}: line 2: image nowhere.jpg not found in {eval_dir / 'images'}"
