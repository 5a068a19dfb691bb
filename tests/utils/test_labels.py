import numpy as np
import pytest

from utils import labels


def test_encode_matches_competition_formula():
    for mask in range(3):
        for gender in range(2):
            for age in range(3):
                assert labels.encode(mask, gender, age) == mask * 6 + gender * 3 + age


def test_decode_inverts_encode_for_all_classes():
    for c in range(labels.NUM_CLASSES):
        assert labels.encode(*labels.decode(c)) == c
    assert labels.decode(17) == labels.Label(2, 1, 2)
    assert labels.decode(7) == labels.Label(1, 0, 1)


@pytest.mark.parametrize("age,group", [(18, 0), (29, 0), (30, 1), (59, 1), (60, 2)])
def test_age_group_default_bounds(age, group):
    assert labels.age_group(age) == group


def test_age_group_moved_boundary():
    assert labels.age_group(58, (30, 58)) == 2
    assert labels.age_group(57, (30, 58)) == 1


def test_out_of_range_rejected():
    for bad in ((3, 0, 0), (0, 2, 0), (0, 0, 3), (-1, 0, 0)):
        with pytest.raises(ValueError) as error:
            labels.encode(*bad)
        assert str(error.value) == "label out of range: mask={}, gender={}, age_group={}".format(*bad)
    for bad in (18, -1):
        with pytest.raises(ValueError) as error:
            labels.decode(bad)
        assert str(error.value) == f"class id out of range: {bad}"


def test_class_names_readable_and_follow_bounds():
    names = labels.class_names()
    assert len(names) == 18 and len(set(names)) == 18
    assert names[0] == "wear/male/<30"
    assert names[4] == "wear/female/30-59"
    assert names[17] == "not/female/>=60"
    assert labels.class_names((30, 58))[5] == "wear/female/>=58"


def test_regrouped_ages_on_a_bound_join_the_older_group():
    ages = [29, 30, 59, 60, 75]
    assert labels.regroup_age(np.array([0, 6, 9, 12, 3]), np.array(ages), [30, 60]).tolist() == [0, 7, 10, 14, 5]
