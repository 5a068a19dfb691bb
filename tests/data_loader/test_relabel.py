import pandas as pd
import pytest

from data_loader.people import list_train_images
from data_loader.relabel import apply_fixes
from utils.errors import DataError
from utils.labels import encode


def write(tmp_path, rows):
    path = tmp_path / "fixes.csv"
    pd.DataFrame(rows, columns=["id", "field", "value"]).to_csv(path, index=False)
    return path


def test_fixes_change_labels_of_exactly_those_people(demo_data, tmp_path):
    images = list_train_images(demo_data / "train")
    people = images.groupby("person_id").first()
    a, b, c = people.index[:3]
    new_gender = "male" if people.loc[a, "gender"] == 1 else "female"
    fixes = write(tmp_path, [(a, "gender", new_gender), (b, "age", "60"), (c, "swap_mask", "")])
    fixed = apply_fixes(images, fixes, (30, 60))
    changed = fixed["label"] != images["label"]
    assert set(fixed.loc[changed, "person_id"]) == {a, b, c}
    assert (fixed.loc[fixed.person_id == a, "gender"] == 1 - people.loc[a, "gender"]).all()
    assert (fixed.loc[fixed.person_id == b, "age_group"] == 2).all()
    before_c, after_c = images[images.person_id == c], fixed[fixed.person_id == c]
    assert after_c["mask"].tolist() == before_c["mask"].map({0: 0, 1: 2, 2: 1}).tolist()
    recomputed = [encode(m, g, x) for m, g, x in zip(fixed["mask"], fixed["gender"], fixed["age_group"])]
    assert fixed["label"].tolist() == recomputed


@pytest.mark.parametrize("row,message", [
    (("000001", "colour", "red"), "field 'colour' is not one of gender, age, swap_mask"),
    (("000001", "age", "old"), "age 'old'"),
])
def test_bad_fixes_name_the_line(demo_data, tmp_path, row, message):
    images = list_train_images(demo_data / "train")
    with pytest.raises(DataError, match=rf"fixes.csv: line 2: .*{message}"):
        apply_fixes(images, write(tmp_path, [row]), (30, 60))


def test_a_list_for_other_data_applies_the_fixes_whose_people_exist(demo_data, tmp_path, caplog):
    caplog.set_level("INFO")
    images = list_train_images(demo_data / "train")
    person = images["person_id"].iloc[0]
    fixes = write(tmp_path, [("006359", "gender", "male"), (person, "age", "60"), ("004432", "gender", "female")])
    fixed = apply_fixes(images, fixes, (30, 60))
    assert (fixed.loc[fixed.person_id == person, "age_group"] == 2).all()
    assert caplog.messages == [
        f"relabel {fixes}: 2 of 3 fixes name people not in this data set (first: '006359'); they are skipped",
        f"relabel {fixes}: 1 fix(es) applied (age 1)"]
    caplog.clear()
    apply_fixes(images, write(tmp_path, [(person, "gender", "male"), (person, "swap_mask", ""),
                                         (person, "age", "20")]), (30, 60))
    assert caplog.messages == [f"relabel {fixes}: 3 fix(es) applied (gender 1, swap_mask 1, age 1)"]


def test_a_draft_of_the_finder_naming_someone_else_is_refused_at_its_line(demo_data, tmp_path):
    images = list_train_images(demo_data / "train")
    draft = tmp_path / "relabel_draft.csv"
    draft.write_text(f"id,field,value,source\n{images['person_id'].iloc[0]},age,60,oof\n999999,gender,male,oof\n")
    with pytest.raises(DataError) as err:
        apply_fixes(images, draft, (30, 60))
    assert str(err.value) == (f"{draft}: line 3: id '999999' is not a person of data.train_dir (a draft of "
                              "tools.label_issues names only people of the data it was made from)")


def test_a_list_naming_nobody_here_is_an_error(demo_data, tmp_path):
    with pytest.raises(DataError, match="none of its 1 fixes names a person of this data set"):
        apply_fixes(list_train_images(demo_data / "train"), write(tmp_path, [("999999", "gender", "male")]), (30, 60))


@pytest.mark.parametrize("value", ["²", "6٠", "1e2"])
def test_non_ascii_or_odd_numbers_are_refused_in_every_table(demo_data, tmp_path, value):
    """The ASCII-digit rule of train.csv holds for relabel lists and pseudo-labels too (one reader)."""
    from data_loader.eval_table import read_pseudo_labels

    images = list_train_images(demo_data / "train")
    with pytest.raises(DataError, match="line 2: age"):
        apply_fixes(images, write(tmp_path, [(images["person_id"].iloc[0], "age", value)]), (30, 60))
    image_id = next((demo_data / "eval" / "images").iterdir()).name
    (tmp_path / "pseudo.csv").write_text(f"ImageID,label\n{image_id},{value}\n")
    with pytest.raises(DataError, match="line 2: label"):
        read_pseudo_labels(tmp_path / "pseudo.csv", demo_data / "eval")


def test_a_fix_list_from_a_spreadsheet_applies_as_the_plain_one(demo_data, tmp_path):
    images = list_train_images(demo_data / "train")
    people = images.groupby("person_id").first()
    a, b = people.index[:2]
    new_gender = "male" if people.loc[a, "gender"] == 1 else "female"
    plain = apply_fixes(images, write(tmp_path, [(a, "gender", new_gender), (b, "age", "60")]), (30, 60))
    odd = tmp_path / "odd.csv"
    odd.write_bytes(b"\xef\xbb\xbf" + f"id,field,value\r\n{a}, Gender ,{new_gender.upper()}\r\n{b},age, 60.0\r\n"
                    .encode())
    pd.testing.assert_frame_equal(apply_fixes(images, odd, (30, 60)), plain)
