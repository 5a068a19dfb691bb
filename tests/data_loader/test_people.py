import logging
import shutil

import hypothesis
import pandas as pd
import pytest

from data_loader.people import inspect_person_folder, list_train_images, read_train_csv
from utils.errors import DataError


@pytest.fixture()
def data_copy(demo_data, tmp_path):
    """A writable copy of the training half of the demo data."""
    dst = tmp_path / "train"
    shutil.copytree(demo_data / "train", dst)
    return dst


def first_folder(train_dir):
    return train_dir / "images" / pd.read_csv(train_dir / "train.csv", dtype=str)["path"].iloc[0]


def test_ids_are_strings_with_leading_zeros(demo_data):
    people = read_train_csv(demo_data / "train")
    assert people["id"].iloc[0] == "000001"
    assert people["age"].between(18, 60).all()


def test_all_seven_images_per_person_and_labels(demo_data):
    images = list_train_images(demo_data / "train")
    assert len(images) == 7 * images["person_id"].nunique()
    assert (images.groupby("person_id")["mask"].apply(sorted).map(tuple) == (0, 0, 0, 0, 0, 1, 2)).all()
    row = images.iloc[0]
    assert row["label"] == row["mask"] * 6 + row["gender"] * 3 + row["age_group"]


def test_stem_matching_mixed_extensions_and_junk(tmp_path):
    folder = tmp_path / "000001_male_Asian_20"
    folder.mkdir()
    for stem, ext in [("mask1", ".jpg"), ("mask2", ".JPEG"), ("mask3", ".png"), ("mask4", ".jpeg"),
                      ("mask5", ".jpg"), ("incorrect_mask", ".png"), ("normal", ".jpg")]:
        (folder / f"{stem}{ext}").write_bytes(b"x")
    (folder / "._mask1.jpg").write_bytes(b"junk")
    (folder / "notes.txt").write_text("not an image")
    found, problems = inspect_person_folder(folder)
    assert sorted(found) == sorted(["mask1", "mask2", "mask3", "mask4", "mask5", "incorrect_mask", "normal"])
    assert found["mask2"].name == "mask2.JPEG" and found["mask1"].name == "mask1.jpg"
    assert sorted((p.kind, p.path.rsplit("/", 1)[1]) for p in problems) == [
        ("junk", "._mask1.jpg"), ("unexpected", "notes.txt")]
    assert not any(p.fatal for p in problems)


def test_missing_image_is_an_error_naming_it(data_copy):
    folder = first_folder(data_copy)
    next(folder.glob("normal.*")).unlink()
    with pytest.raises(DataError, match=rf"{folder.name}.*missing image\(s\) normal"):
        list_train_images(data_copy)


def test_two_files_for_one_stem_is_an_error(data_copy):
    folder = first_folder(data_copy)
    src = next(folder.glob("mask1.*"))
    shutil.copy(src, folder / ("mask1.png" if src.suffix != ".png" else "mask1.jpg"))
    with pytest.raises(DataError, match="two files for 'mask1'"):
        list_train_images(data_copy)


def test_unreadable_image_error_or_skip(data_copy, caplog):
    folder = first_folder(data_copy)
    bad = next(folder.glob("mask3.*"))
    bad.write_bytes(b"")
    with pytest.raises(DataError, match=str(bad.name)):
        list_train_images(data_copy)
    with caplog.at_level(logging.WARNING):
        images = list_train_images(data_copy, skip_bad_images=True)
    assert str(bad) not in set(images["path"])
    assert len(images) == 7 * images["person_id"].nunique() - 1
    assert "skipped 1 bad item" in caplog.text


@pytest.mark.parametrize("edit,message", [
    (lambda df: df.drop(columns=["age"]), "missing column"),
    (lambda df: df.assign(gender=["robot"] + list(df["gender"][1:])), "gender 'robot'"),
    (lambda df: df.assign(age=["forty"] + list(df["age"][1:])), "age 'forty'"),
    (lambda df: pd.concat([df, df.iloc[:1]]), "duplicated id '000001'"),
    (lambda df: df.assign(path=["nowhere"] + list(df["path"][1:])), "person folder not found"),
])
def test_bad_train_csv(data_copy, edit, message):
    csv = data_copy / "train.csv"
    edit(pd.read_csv(csv, dtype=str)).to_csv(csv, index=False)
    with pytest.raises(DataError, match=message) as err:
        list_train_images(data_copy)
    assert "train.csv" in str(err.value) or "nowhere" in str(err.value)


def test_a_train_csv_from_another_system_reads_as_the_same_people(data_copy):
    """A byte-order mark, Windows line endings, padded and capitalised cells, ages written as floats and an
    extra column (what a spreadsheet saves) describe the same people as the plain file."""
    csv = data_copy / "train.csv"
    plain = read_train_csv(data_copy)
    table = pd.read_csv(csv, dtype=str)
    odd = table.assign(gender=[f" {g.capitalize()} " for g in table["gender"]], age=[f"{a}.0" for a in table["age"]],
                       note="checked")
    csv.write_bytes(b"\xef\xbb\xbf" + odd.to_csv(index=False).replace("\n", "\r\n").encode())
    again = read_train_csv(data_copy)
    pd.testing.assert_frame_equal(again, plain)
    assert again["age"].dtype.kind == "i" and set(again["gender"]) <= {"male", "female"}
    assert len(list_train_images(data_copy)) == 7 * len(plain)


@pytest.mark.parametrize("age", ["45.5", "4.5e1", "-45", "45,0"])
def test_an_age_that_is_not_a_whole_number_is_still_refused(data_copy, age):
    csv = data_copy / "train.csv"
    table = pd.read_csv(csv, dtype=str)
    table.assign(age=[age] + list(table["age"][1:])).to_csv(csv, index=False)
    with pytest.raises(DataError, match=f"line 2: age '{age}' is not an integer"):
        read_train_csv(data_copy)


@pytest.mark.parametrize("text, value", [("45", 45), (" 45 ", 45), ("045", 45), ("45.0", 45), ("45.", 45),
                                         ("45.000", 45), ("0", 0), ("120", 120), ("121", None), ("-1", None),
                                         ("", None), ("4 5", None), ("45.01", None), ("²", None), ("٤٥", None),
                                         ("+45", None), ("0x2d", None)])
def test_an_integer_cell_is_ascii_digits_in_range(text, value):
    from data_loader.people import int_cell

    assert int_cell(text, 0, 120) == value


@hypothesis.given(hypothesis.strategies.integers(-1000, 1000), hypothesis.strategies.integers(0, 50),
                  hypothesis.strategies.integers(0, 50))
def test_an_integer_cell_reads_every_whole_number_written_plainly_or_as_a_float(number, low, span):
    from data_loader.people import int_cell

    inside = low <= number <= low + span
    assert int_cell(str(number), low, low + span) == (number if inside else None)
    assert int_cell(f"{number}.0", low, low + span) == (number if inside else None)


def test_a_csv_with_a_repeated_unique_value_names_its_second_line(tmp_path):
    from data_loader.people import read_csv_table

    csv = tmp_path / "info.csv"
    csv.write_text("ImageID,ans\na.jpg,0\nb.jpg,0\nc.jpg,0\nb.jpg,1\n")
    with pytest.raises(DataError, match=r"info.csv: line 5: ImageID 'b.jpg' appears more than once"):
        read_csv_table(csv, ("ImageID",), "data.eval_dir", unique="ImageID")
    assert read_csv_table(csv, ("ImageID",), "data.eval_dir")["ImageID"].tolist() == ["a.jpg", "b.jpg", "c.jpg",
                                                                                       "b.jpg"]


@pytest.mark.parametrize("content, message", [
    (None, r"train.csv: not found \(data.train_dir must hold train.csv and images/\)"),
    (b"", r"train.csv: cannot parse CSV \(EmptyDataError\)"),
    (b"id,gender\n\xff\xfe,1\n", r"train.csv: cannot parse CSV \(UnicodeDecodeError\)"),
    (b"id,gender,race,path\n1,male,Asian,p\n", r"train.csv: missing column\(s\) age$"),
])
def test_an_unreadable_train_csv_is_named_with_the_reason(tmp_path, content, message):
    if content is not None:
        (tmp_path / "train.csv").write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_train_csv(tmp_path)


def test_a_csv_outside_the_data_section_gets_no_folder_hint(tmp_path):
    from data_loader.people import read_csv_table

    with pytest.raises(DataError) as err:
        read_csv_table(tmp_path / "relabel.csv", ("id",), "relabel")
    assert str(err.value) == f"{tmp_path / 'relabel.csv'}: not found"


@pytest.mark.parametrize("rows, message", [
    ("1,male,Asian,30,a\n,female,Asian,30,b\n", "line 3: empty id$"),
    ("1,male,Asian,30,a\n2,female,Asian,40,a\n",
     r"folder 'a' is listed under ids 1, 2 \(one person twice would sit on both sides of the split\)$"),
    ("1,male,Asian,30,a\n2,female,Asian,121,b\n", r"line 3: age '121' is not an integer in \[0, 120\]"),
])
def test_train_csv_rows_that_would_mislead_are_refused_by_line(tmp_path, rows, message):
    (tmp_path / "train.csv").write_text("id,gender,race,age,path\n" + rows)
    with pytest.raises(DataError, match=message):
        read_train_csv(tmp_path)


def test_a_person_with_a_bad_folder_is_left_out_whole_and_every_problem_is_listed(data_copy):
    from data_loader.people import scan_train_images

    folder = first_folder(data_copy)
    next(folder.glob("normal.*")).unlink()
    (folder / "._mask1.jpg").write_bytes(b"junk")
    images, problems = scan_train_images(data_copy)
    assert not images["path"].str.startswith(str(folder) + "/").any()
    here = [p for p in problems if p.path.startswith(str(folder))]
    assert sorted((p.kind, p.fatal) for p in here) == [("junk", False), ("missing", True)]
    people = read_train_csv(data_copy)
    assert images["person_id"].nunique() == len(people) - 1
    ages = dict(zip(people["id"], people["age"]))
    assert (images["age"] == images["person_id"].map(ages)).all()
    assert list(images.columns) == ["person_id", "gender", "age", "age_group", "mask", "label", "path"]


def test_the_age_bounds_decide_the_age_group(data_copy):
    from utils.labels import encode

    images = list_train_images(data_copy, age_bounds=(25, 50))
    expected = (images["age"] >= 25).astype(int) + (images["age"] >= 50).astype(int)
    assert (images["age_group"] == expected).all()
    assert (images["label"] == [encode(m, g, a) for m, g, a in zip(images["mask"], images["gender"],
                                                                    images["age_group"])]).all()


def test_a_person_without_a_folder_is_left_out_alone_and_named(data_copy):
    from data_loader.people import scan_train_images

    people = read_train_csv(data_copy)
    gone = data_copy / "images" / people["path"].iloc[1]
    shutil.rmtree(gone)
    images, problems = scan_train_images(data_copy)
    assert sorted(set(images["person_id"])) == sorted(set(people["id"]) - {people["id"].iloc[1]})
    missing = [p for p in problems if p.kind == "missing_folder"]
    assert [(p.path, p.fatal) for p in missing] == [(str(gone), True)]
    assert missing[0].message == f"{gone}: person folder not found (train.csv id {people['id'].iloc[1]})"


def test_every_problem_in_a_folder_has_its_kind_path_and_message(tmp_path):
    folder = tmp_path / "000001_male_Asian_20"
    folder.mkdir()
    for stem in ("mask1", "mask2", "mask3", "mask4", "incorrect_mask", "normal"):
        (folder / f"{stem}.jpg").write_bytes(b"x")
    (folder / "mask1.png").write_bytes(b"x")
    (folder / "._normal.jpg").write_bytes(b"junk")
    (folder / "mask9.jpg").write_bytes(b"x")
    _, problems = inspect_person_folder(folder)
    assert sorted((p.kind, p.path, p.message) for p in problems) == sorted([
        ("duplicate", str(folder / "mask1.png"), f"{folder}: two files for 'mask1': mask1.jpg, mask1.png"),
        ("junk", str(folder / "._normal.jpg"), f"{folder / '._normal.jpg'}: junk file ignored"),
        ("unexpected", str(folder / "mask9.jpg"), f"{folder / 'mask9.jpg'}: unexpected file name ignored"),
        ("missing", str(folder), f"{folder}: missing image(s) mask5"),
    ])


def test_an_unreadable_image_is_a_problem_naming_its_path_and_the_skip_warning_names_it(data_copy, caplog):
    from data_loader.people import scan_train_images

    bad = [next(first_folder(data_copy).glob(f"{stem}.*")) for stem in ("mask2", "normal")]
    for path in bad:
        path.write_bytes(b"not an image")
    _, problems = scan_train_images(data_copy)
    unreadable = [p for p in problems if p.kind == "unreadable"]
    assert sorted(p.path for p in unreadable) == sorted(map(str, bad))
    assert all(p.path in p.message for p in unreadable)
    with caplog.at_level(logging.WARNING):
        list_train_images(data_copy, skip_bad_images=True)
    messages = "; ".join(p.message for p in problems if p.fatal)
    assert f"skipped {sum(p.fatal for p in problems)} bad item(s): {messages}" in caplog.messages


def test_the_people_table_has_its_columns_only_and_keeps_empty_cells_as_text(data_copy):
    csv = data_copy / "train.csv"
    table = pd.read_csv(csv, dtype=str)
    table.assign(race=["", "NA"] + list(table["race"][2:])).to_csv(csv, index=False)
    people = read_train_csv(data_copy)
    assert list(people.columns) == ["id", "gender", "race", "age", "path"]
    assert people["race"].tolist()[:2] == ["", "NA"] and list(people.index) == list(range(len(people)))


def test_missing_columns_are_all_named(tmp_path):
    (tmp_path / "train.csv").write_text("id,race,path\n1,Asian,a\n")
    with pytest.raises(DataError, match=r"train.csv: missing column\(s\) gender, age$"):
        read_train_csv(tmp_path)
