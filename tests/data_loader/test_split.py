
from data_loader.datasets import MaskBaseDataset, MaskSplitByProfileDataset
from data_loader.people import list_train_images
from data_loader.split import person_strata, stratified_person_split
from helpers import fake_images


def test_no_person_on_both_sides():
    images = fake_images(500)
    train, val = stratified_person_split(images, 0.2, seed=1)
    assert not set(train) & set(val)
    assert set(train) | set(val) == set(images["person_id"])


def test_each_stratum_split_in_ratio():
    images = fake_images(1000)
    _, val = stratified_person_split(images, 0.2, seed=1)
    strata = person_strata(images)
    for stratum, members in strata.groupby(strata):
        n_val = members.index.isin(val).sum()
        assert abs(n_val - 0.2 * len(members)) <= 0.5 + 1e-9, stratum


def test_deterministic_for_a_seed():
    images = fake_images(300)
    assert stratified_person_split(images, 0.3, 7) == stratified_person_split(images, 0.3, 7)
    assert stratified_person_split(images, 0.3, 7)[1] != stratified_person_split(images, 0.3, 8)[1]


def test_zero_ratio_puts_everyone_in_train():
    images = fake_images(50)
    train, val = stratified_person_split(images, 0.0, 0)
    assert val == [] and len(train) == 50


def test_profile_dataset_keeps_people_together(demo_data):
    ds = MaskSplitByProfileDataset(list_train_images(demo_data / "train"))
    tr, va = ds.split_indices(0.25, seed=0)
    people_tr = set(ds.images["person_id"].iloc[tr])
    people_va = set(ds.images["person_id"].iloc[va])
    assert people_va and not people_tr & people_va
    assert len(tr) + len(va) == len(ds) and len(va) % 7 == 0


def test_base_dataset_leaks_people(demo_data):
    ds = MaskBaseDataset(list_train_images(demo_data / "train"))
    tr, va = ds.split_indices(0.25, seed=0)
    assert set(ds.images["person_id"].iloc[tr]) & set(ds.images["person_id"].iloc[va])


def test_the_image_split_of_the_leaky_dataset_is_seeded_and_in_ratio():
    from data_loader.split import random_image_split

    images = fake_images(40)
    train, val = random_image_split(images, 0.25, seed=3)
    assert len(val) == round(len(images) * 0.25) and sorted([*train, *val]) == list(range(len(images)))
    again, _ = random_image_split(images, 0.25, seed=3)
    other, _ = random_image_split(images, 0.25, seed=4)
    assert list(again) == list(train) and list(other) != list(train)
