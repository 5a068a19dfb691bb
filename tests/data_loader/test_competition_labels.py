"""Validation is scored on the competition's labels; near-duplicate people stay on one side."""
import logging
import shutil

import numpy as np
import pandas as pd
import pytest

from data_loader.datasets import MaskSplitByProfileDataset
from utils.config import DataConfig
from utils.labels import split_classes


@pytest.fixture()
def aged_data(demo_data, tmp_path):
    """The demo train set with a third of the people aged 58 or 59."""
    train = tmp_path / "train"
    shutil.copytree(demo_data / "train", train)
    table = pd.read_csv(train / "train.csv", dtype={"id": str})
    table.loc[table.index % 3 == 0, "age"] = np.where(table.index[table.index % 3 == 0] % 2, 58, 59)
    table.to_csv(train / "train.csv", index=False)
    return train, table


def test_age_bound_moves_training_labels_only(aged_data):
    train_dir, table = aged_data
    dataset = MaskSplitByProfileDataset.from_config(DataConfig(train_dir=train_dir, age_bounds=(30, 58)))
    train_set, val_set = dataset.split(0.5, seed=0, train_transform=None, val_transform=None)
    ages = {pid: age for pid, age in zip(table["id"], table["age"])}

    def age_groups(ds):
        return split_classes(ds.labels)[2], np.array([ages[p.split("/")[-2].split("_")[0]] for p in ds.paths])

    train_groups, train_ages = age_groups(train_set)
    val_groups, val_ages = age_groups(val_set)
    assert (train_ages >= 58).any() and (val_ages >= 58).any()
    assert (train_groups[train_ages >= 58] == 2).all()          # training: 58+ counted as oldest
    assert (val_groups[val_ages >= 58] == 1).all()              # validation: the competition's 30-59
    assert (val_groups == np.digitize(val_ages, [30, 60])).all()


def test_trainer_validates_on_competition_labels(aged_data, make_trainer):
    train_dir, table = aged_data
    trainer = make_trainer(**{"data.age_bounds": "[30, 58]", "data.train_dir": train_dir, "data.val_ratio": 0.5})
    ages = dict(zip(table["id"], table["age"]))
    for loader, oldest_from in ((trainer.val_loader, 60), (trainer.train_loader, 58)):
        data = loader.dataset
        person_ages = np.array([ages[p.split("/")[-2].split("_")[0]] for p in data.paths])
        assert (split_classes(data.labels)[2] == np.digitize(person_ages, [30, oldest_from])).all()
    assert trainer.metadata["class_names"][2].endswith(">=60")


def duplicate_person(train_dir, source_row=0, new_id="900001"):
    """List one person's photo folder a second time under a new id (copying the folder)."""
    table = pd.read_csv(train_dir / "train.csv", dtype={"id": str})
    row = table.iloc[source_row].copy()
    new_path = f"{new_id}_{row['gender']}_{row['race']}_{row['age']}"
    shutil.copytree(train_dir / "images" / row["path"], train_dir / "images" / new_path)
    row["id"], row["path"] = new_id, new_path
    pd.concat([table, row.to_frame().T]).to_csv(train_dir / "train.csv", index=False)
    return table.iloc[source_row]["id"], new_id


@pytest.mark.parametrize("source_row", [0, 7, 13])
def test_near_duplicate_people_stay_on_one_side(demo_data, tmp_path, source_row, caplog):
    train_dir = tmp_path / "train"
    shutil.copytree(demo_data / "train", train_dir)
    original, copy = duplicate_person(train_dir, source_row)
    with caplog.at_level(logging.WARNING, logger="data_loader.datasets"):
        dataset = MaskSplitByProfileDataset.from_config(DataConfig(train_dir=train_dir))
    assert caplog.messages == ["1 person id(s) look like near-duplicates of another id; each group stays on one side "
                               "of the split (python -m tools.data_report lists them)"]
    assert dataset.groups[copy] == dataset.groups[original]
    people = dataset.images["person_id"].to_numpy()
    splits = [dataset.split_indices(0.5, seed) for seed in range(6)]
    splits += [dataset.split_indices(0.0, 0, n_folds=3, fold=k) for k in range(3)]
    for _, val_rows in splits:
        in_val = set(people[val_rows])
        assert (original in in_val) == (copy in in_val)
    unguarded = MaskSplitByProfileDataset.from_config(DataConfig(train_dir=train_dir, group_duplicates=False))
    sides = [(original in set(people[v])) != (copy in set(people[v]))
             for _, v in (unguarded.split_indices(0.5, seed) for seed in range(12))]
    assert any(sides)  # without grouping, the same person does land on both sides
