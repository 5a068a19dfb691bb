import pandas as pd

from data_loader.datasets import MaskBaseDataset, MaskSplitByProfileDataset
from data_loader.people import list_train_images
from data_loader.split import person_strata, stratified_person_split
from helpers import fake_images, hand_strata


def test_no_person_on_both_sides():
    images = fake_images(500)
    train, val = stratified_person_split(images, 0.2, seed=1)
    assert not set(train) & set(val)
    assert set(train) | set(val) == set(images["person_id"])


def test_person_strata_written_out():
    rows = [("a", 0, 0), ("b", 1, 2), ("c", 0, 2), ("d", 1, 0), ("e", 1, 1), ("f", 0, 1)]
    images = pd.DataFrame([r for r in rows for _ in range(7)], columns=["person_id", "gender", "age_group"])
    assert person_strata(images).to_dict() == {"a": 0, "b": 5, "c": 2, "d": 3, "e": 4, "f": 1}
    assert list(person_strata(images.iloc[::-1]).index) == list("abcdef")  # in id order, whatever the table's


def test_each_stratum_split_in_ratio():
    images = fake_images(1000)
    _, val = stratified_person_split(images, 0.2, seed=1)
    strata = hand_strata(images)
    assert strata.nunique() == 6
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


def test_fold_k_validates_exactly_the_people_dealt_to_fold_k(demo_data):
    from data_loader.split import stratified_person_folds
    from utils.config import DataConfig

    dataset = MaskSplitByProfileDataset.from_config(DataConfig(train_dir=demo_data / "train", group_duplicates=False))
    people = dataset.images["person_id"].to_numpy()
    dealt = stratified_person_folds(dataset.split_units(), 3, seed=4)
    seen = []
    for k in range(3):
        train_rows, val_rows = dataset.split_indices(0.0, 4, n_folds=3, fold=k)
        assert set(people[val_rows]) == {p for p, f in dealt.items() if f == k}
        assert set(people[train_rows]) == {p for p, f in dealt.items() if f != k}
        seen += list(val_rows)
    assert sorted(seen) == list(range(len(people)))  # every image validated exactly once


def test_small_strata_continue_the_deal_so_folds_stay_even():
    from data_loader.split import stratified_person_folds

    rows = [(f"p{k}", k % 2, (k // 2) % 3) for k in range(6)] + [(f"q{k}", k % 2, (k // 2) % 3) for k in range(3)]
    images = pd.DataFrame(rows, columns=["person_id", "gender", "age_group"])  # six strata of one or two
    for seed in range(5):
        sizes = pd.Series(stratified_person_folds(images, 3, seed)).value_counts()
        assert sorted(sizes.tolist()) == [3, 3, 3], seed


def test_the_leaky_dataset_deals_images_into_even_seeded_folds():
    images = fake_images(10).assign(path=lambda frame: [f"{k}.jpg" for k in range(len(frame))], label=0)
    dataset = MaskBaseDataset(images)
    folds = [dataset.split_indices(0.5, seed=5, n_folds=3, fold=k) for k in range(3)]
    for train_rows, val_rows in folds:
        assert sorted([*train_rows, *val_rows]) == list(range(70)) and not set(train_rows) & set(val_rows)
    assert sorted(len(val_rows) for _, val_rows in folds) == [23, 23, 24]
    assert sorted(row for _, val_rows in folds for row in val_rows) == list(range(70))  # each image once
    again = dataset.split_indices(0.0, seed=5, n_folds=3, fold=1)  # the ratio plays no part with folds
    other = dataset.split_indices(0.5, seed=6, n_folds=3, fold=1)
    assert list(again[1]) == list(folds[1][1]) and list(other[1]) != list(folds[1][1])
    assert len(dataset.split_indices(0.5, seed=5)[1]) == 35  # without folds: half of the images


def test_the_split_of_a_seed_does_not_depend_on_the_order_of_the_image_table():
    images = fake_images(60)
    shuffled = images.sample(frac=1.0, random_state=1).reset_index(drop=True)
    assert stratified_person_split(shuffled, 0.3, 7) == stratified_person_split(images, 0.3, 7)


def labelled(n_people: int) -> pd.DataFrame:
    """`fake_images` with the path and label columns a dataset reads."""
    images = fake_images(n_people)
    return images.assign(path=[f"{k}.jpg" for k in range(len(images))],
                         label=6 * images["mask"] + 3 * images["gender"] + images["age_group"])


def test_split_hands_seed_folds_and_fold_to_the_split_and_fold_0_is_the_default():
    from data_loader.split import stratified_person_folds

    for cls in (MaskBaseDataset, MaskSplitByProfileDataset):
        dataset = cls(labelled(12))
        for seed, fold in ((4, 2), (5, 1)):
            _, val = dataset.split(0.0, seed, None, None, n_folds=3, fold=fold)
            assert val.paths == [dataset.paths[k] for k in dataset.split_indices(0.0, seed, 3, fold)[1]]
        _, default = dataset.split(0.0, 4, None, None, n_folds=3)
        assert default.paths == [dataset.paths[k] for k in dataset.split_indices(0.0, 4, 3, 0)[1]]
        assert list(dataset.split_indices(0.0, 4, n_folds=3)[1]) == list(dataset.split_indices(0.0, 4, 3, 0)[1])
    dataset = MaskSplitByProfileDataset(labelled(12))
    dealt = stratified_person_folds(dataset.images, 3, seed=4)
    _, val = dataset.split(0.0, 4, None, None, n_folds=3, fold=2)
    validated = set(dataset.images.set_index("path").loc[val.paths, "person_id"])
    assert validated == {p for p, f in dealt.items() if f == 2}
    leaky = MaskBaseDataset(labelled(12))
    assert leaky.split(0.25, 3, None, None)[1].paths != leaky.split(0.25, 4, None, None)[1].paths  # seeded
    assert leaky.split(0.25, 3, None, None)[1].paths == leaky.split(0.25, 3, None, None)[1].paths


def test_a_split_that_cannot_train_or_validate_says_which_setting():
    import pytest

    from utils.errors import DataError

    leaky = MaskBaseDataset(labelled(10))
    cases = [
        (leaky, dict(val_ratio=0.0, n_folds=1), "data.n_folds=1, data.fold=0 leaves no training images (70 images in "
                                                "all)"),
        (leaky, dict(val_ratio=1.0), "data.val_ratio=1.0 leaves no training images (70 images in all)"),
        (leaky, dict(val_ratio=0.001), "data.val_ratio=0.001 leaves no validation images (70 images in all): raise "
                                       "data.val_ratio, or set it to 0 to train on everyone"),
        (MaskSplitByProfileDataset(labelled(10)), dict(val_ratio=0.0, n_folds=11),
         "data.n_folds=11: only 10 people (near-duplicates counted once) to share between the folds"),
    ]
    for dataset, settings, message in cases:
        with pytest.raises(DataError) as caught:
            dataset.split(seed=0, train_transform=None, val_transform=None, **settings)
        assert str(caught.value) == message
    train, val = leaky.split(0.0, 0, None, None)
    assert len(train) == 70 and len(val) == 0  # a ratio of 0 trains on everyone
    everyone = MaskSplitByProfileDataset(labelled(10))
    folds = [everyone.split(0.0, 0, None, None, n_folds=10, fold=k)[1] for k in range(10)]
    assert sorted(len(val) for val in folds) == [7] * 10  # as many folds as people: one person each
