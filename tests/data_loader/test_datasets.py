import numpy as np
import torch

from data_loader.cache import build_cache, cache_size
from data_loader.datasets import ImageDataset, MaskSplitByProfileDataset
from data_loader.images import load_image
from data_loader.loaders import build_loader
from data_loader.people import list_train_images
from data_loader.seeding import sample_seed
from data_loader.transforms import build_transforms
from helpers import ROOT
from utils.config import load_config


def pipelines():
    cfg = load_config(ROOT / "configs/demo.yaml", ["augment.image_size=[64,48]"])
    return build_transforms(cfg.augment)


def test_memory_and_disk_cache_give_identical_samples(demo_data, tmp_path):
    train_tf, _ = pipelines()
    images = list_train_images(demo_data / "train")
    jpeg_rows = [i for i, p in enumerate(images["path"]) if p.endswith(".jpg")][:3]
    hw = cache_size((64, 48), draft=True)
    assert hw == (64, 48)
    plain = MaskSplitByProfileDataset(images, transform=train_tf, draft_size=(48, 64), seed=1)
    memory = MaskSplitByProfileDataset(images, transform=train_tf, seed=1,
                                       cache=build_cache("memory", images["path"].tolist(), hw))
    disk = MaskSplitByProfileDataset(images, transform=train_tf, seed=1,
                                     cache=build_cache("disk", images["path"].tolist(), hw, tmp_path))
    assert isinstance(disk.cache, np.memmap) and memory.cache.shape == (len(images), 64, 48, 3)
    assert np.array_equal(np.asarray(disk.cache), memory.cache)
    for ds in (plain, memory, disk):
        ds.set_epoch(2)
    for i in jpeg_rows:
        assert torch.equal(plain[i][0], memory[i][0]) and torch.equal(plain[i][0], disk[i][0])
    eval_tf = pipelines()[1]
    _, val = memory.split(0.25, 0, train_tf, eval_tf)
    first_val_row = int(memory.split_indices(0.25, 0)[1][0])
    expected = eval_tf(image=memory.cache[first_val_row])["image"]
    assert torch.equal(val[0][0], expected) and val[0][1] == images["label"].iloc[first_val_row]


def test_disk_cache_is_reused_and_keyed_by_files(demo_data, tmp_path):
    paths = sorted(str(p) for p in (demo_data / "train" / "images").glob("*/mask1.jpg"))[:5]
    build_cache("disk", paths, (64, 48), tmp_path)
    (cache_file,) = list(tmp_path.glob("*.u8"))
    mtime = cache_file.stat().st_mtime_ns
    build_cache("disk", paths, (64, 48), tmp_path)
    assert cache_file.stat().st_mtime_ns == mtime and len(list(tmp_path.glob("*.u8"))) == 1
    build_cache("disk", paths[:4], (64, 48), tmp_path)
    assert len(list(tmp_path.glob("*.u8"))) == 2
    assert cache_size((224, 224), draft=True) == (512, 384) and cache_size((128, 96), draft=True) == (128, 96)
    assert cache_size((64, 48), draft=False) == (512, 384)


def test_augmentation_depends_on_seed_epoch_index_only(demo_data):
    train_tf, _ = pipelines()
    paths = sorted(str(p) for p in (demo_data / "train" / "images").glob("*/mask1.jpg"))[:4]
    ds = ImageDataset(paths, [0] * 4, train_tf, seed=3)
    ds.set_epoch(1)
    first = [ds[i][0] for i in range(4)]
    ds.set_epoch(1)
    assert all(torch.equal(first[i], ds[i][0]) for i in reversed(range(4)))  # order does not matter
    ds.set_epoch(2)
    assert not all(torch.equal(first[i], ds[i][0]) for i in range(4))
    assert sample_seed(3, 1, 0) != sample_seed(3, 2, 0) != sample_seed(4, 1, 0)


def test_same_batches_for_any_worker_count(demo_data):
    train_tf, _ = pipelines()
    paths = sorted(str(p) for p in (demo_data / "train" / "images").glob("*/normal.*"))[:12]
    ds = ImageDataset(paths, list(range(12)), train_tf, seed=0)
    batches = {}
    for workers in (0, 2):
        loader = build_loader(ds, batch_size=4, train=True, seed=0, num_workers=workers)
        loader.sampler.set_epoch(1)
        ds.set_epoch(1)
        batches[workers] = [(x, y) for x, y, _ in loader]
    assert len(batches[0]) == 3
    for (xa, ya), (xb, yb) in zip(batches[0], batches[2]):
        assert torch.equal(ya, yb) and torch.equal(xa, xb)


def test_jpeg_draft_decodes_small_but_not_smaller_than_asked(demo_data):
    path = sorted((demo_data / "train" / "images").glob("*/mask1.jpg"))[0]
    full = load_image(path)
    small = load_image(path, (48, 64))
    assert full.shape == (512, 384, 3)
    assert small.shape[0] >= 64 and small.shape[1] >= 48 and small.shape[0] < 512
    assert np.abs(small.astype(float).mean() - full.astype(float).mean()) < 10


def test_balanced_sampler_draws_classes_uniformly():
    from data_loader.loaders import EpochShuffleSampler, balanced_weights

    labels = [0] * 800 + [1] * 150 + [5] * 40 + [17] * 10  # like the real imbalance
    weights = balanced_weights(labels)
    assert weights[0] == 1 / 800 and weights[-1] == 1 / 10  # indexed by class id, not rank
    sampler = EpochShuffleSampler(len(labels), seed=0, weights=weights)
    drawn = []
    for epoch in range(20):
        sampler.set_epoch(epoch)
        drawn += [labels[i] for i, _ in sampler]
    counts = np.bincount(drawn, minlength=18)[[0, 1, 5, 17]]
    assert counts.sum() == 20 * len(labels)
    assert np.abs(counts / counts.sum() - 0.25).max() < 0.02
    shards = [EpochShuffleSampler(len(labels), 0, rank, 2, weights=weights).indices() for rank in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 500


def test_validation_and_prediction_see_the_same_pixels(demo_data, tmp_path):
    """One pipeline (data_loader.pipeline) feeds validation and prediction: a validation photo becomes
    the same tensor in the Trainer's val loader (from the image cache) and in the predictor's dataset
    (from the file), whole or cut to its face."""
    import shutil

    import torch

    from data_loader.pipeline import build_image_pipeline
    from helpers import ROOT, tiny_overrides
    from trainer.build import build_parts
    from utils.config import load_config

    shutil.copytree(demo_data, tmp_path / "data")
    for extra in ({"data.cache": "memory"}, {"data.cache": "memory", "augment.face_crop.margin": 0.2},
                  {"data.cache": "none", "augment.face_crop.margin": 0.2}):
        config = load_config(ROOT / "configs/demo.yaml", tiny_overrides(tmp_path / "data", tmp_path / "s", **extra))
        val = build_parts(config).val_loader.dataset
        predicted = build_image_pipeline(config, [config.data.train_dir]).eval_dataset(val.paths[:3], seed=config.seed)
        for k in range(3):
            assert torch.equal(val[k][0], predicted[k][0])
        assert type(val.crop) is type(predicted.crop)  # the recipe's centre crop, or the face crop
        assert type(val.crop).__name__ == ("FaceCrop" if "augment.face_crop.margin" in extra else "CenterCrop")
        assert (val.cache is None) == (extra["data.cache"] == "none") and predicted.cache is None


def test_pseudo_labels_join_training_with_their_weight_and_read_their_files(demo_data):
    import pandas as pd

    from data_loader.datasets import with_pseudo_labels

    train_paths = sorted(str(p) for p in (demo_data / "train" / "images").glob("*/mask1.jpg"))[:3]
    eval_paths = sorted(str(p) for p in (demo_data / "eval" / "images").glob("*.jpg"))[:2]
    cache = np.stack([np.full((8, 6, 3), 10 * (k + 1), dtype=np.uint8) for k in range(4)])
    train_tf, _ = pipelines()

    def crop(path: str) -> np.ndarray:
        return np.full((8, 6, 3), 99 if path == eval_paths[1] else 0, dtype=np.uint8)

    train_set = ImageDataset(train_paths, [1, 2, 3], transform=train_tf, draft_size=(6, 8), seed=5, cache=cache,
                             cache_rows=[3, 0, 1], crop=crop)
    merged = with_pseudo_labels(train_set, pd.DataFrame({"path": eval_paths, "label": [7, 17]}), weight=0.25)
    assert merged.paths == [*train_paths, *eval_paths] and merged.labels.tolist() == [1, 2, 3, 7, 17]
    assert merged.labels.dtype == np.int64 and merged.cache_rows.tolist() == [3, 0, 1, -1, -1]
    assert merged.sample_weights.tolist() == [1.0, 1.0, 1.0, 0.25, 0.25]
    assert (merged.seed, merged.draft_size, merged.cache is cache) == (5, (6, 8), True)
    assert merged.transform is train_tf and merged.crop is crop
    assert int(merged.decoded(0)[0, 0, 0]) == 40  # from the cache, row 3
    assert int(merged.decoded(4)[0, 0, 0]) == 99  # from its file, through the face crop
    assert merged[3][1:] == (7, 3) and merged[3][0].shape[-2:] == (64, 48)


def test_an_unlabelled_dataset_is_seed_0_epoch_0_with_labels_minus_one(demo_data):
    """The defaults a predictor relies on: no labels means -1 for each image, and before `set_epoch` a dataset
    built without a seed draws seed 0's augmentations of epoch 0."""
    train_tf, _ = pipelines()
    paths = sorted(str(p) for p in (demo_data / "train" / "images").glob("*/mask1.jpg"))[:4]
    plain = ImageDataset(paths, transform=train_tf)
    assert plain.labels.tolist() == [-1] * 4 and plain.labels.dtype == np.int64
    seeded = ImageDataset(paths, [5] * 4, transform=train_tf, seed=0)
    assert all(torch.equal(plain[k][0], seeded[(k, 0)][0]) for k in range(4))
    assert plain[2][1:] == (-1, 2)
    other_seed = ImageDataset(paths, transform=train_tf, seed=1)
    other_epoch = ImageDataset(paths, transform=train_tf, seed=0)
    other_epoch.set_epoch(1)
    for other in (other_seed, other_epoch):  # the comparison above can fail
        assert not all(torch.equal(plain[k][0], other[k][0]) for k in range(4))


def test_a_dataset_from_config_reads_the_data_options_and_keeps_its_arguments(demo_data, tmp_path):
    """`from_config`/`build_dataset` apply `skip_bad_images` and `relabel` with the configured age bounds, and
    hand draft size, seed and face crop down to every split."""
    import shutil

    import pandas as pd
    import pytest

    from data_loader.datasets import build_dataset
    from utils.config import DataConfig
    from utils.errors import DataError

    train_dir = tmp_path / "train"
    shutil.copytree(demo_data / "train", train_dir)
    bad = sorted(train_dir.glob("images/*/mask2.*"))[0]
    bad.write_bytes(b"")
    with pytest.raises(DataError, match=bad.name):
        MaskSplitByProfileDataset.from_config(DataConfig(train_dir=train_dir, group_duplicates=False))
    people = pd.read_csv(train_dir / "train.csv", dtype=str)
    young = people.loc[people["age"].astype(int) < 30, "id"].iloc[0]
    fixes = tmp_path / "fixes.csv"
    pd.DataFrame([(young, "age", "57")], columns=["id", "field", "value"]).to_csv(fixes, index=False)

    def crop(path: str) -> np.ndarray:
        return np.zeros((8, 6, 3), dtype=np.uint8)

    cfg = DataConfig(train_dir=train_dir, skip_bad_images=True, relabel=fixes, age_bounds=(30, 55),
                     group_duplicates=False)
    dataset = build_dataset(cfg, draft_size=(48, 64), seed=9, crop=crop)
    assert str(bad) not in dataset.paths and len(dataset) == 7 * len(people) - 1
    moved = dataset.images[dataset.images["person_id"] == young]
    assert (moved["age"] == 57).all() and (moved["age_group"] == 2).all()  # 57 is "old" under bounds (30, 55)
    assert (dataset.eval_labels[moved.index] % 3 == 1).all()  # and 30-59 in the competition's groups
    train, val = dataset.split(0.25, 0, None, None)
    for part in (dataset, train, val):
        assert (part.draft_size, part.seed, part.crop) == ((48, 64), 9, crop)


def test_an_empty_training_folder_is_one_clear_error(tmp_path):
    import pytest

    from utils.config import DataConfig
    from utils.errors import DataError

    (tmp_path / "images").mkdir()
    (tmp_path / "train.csv").write_text("id,gender,race,age,path\n")
    with pytest.raises(DataError) as caught:
        MaskSplitByProfileDataset.from_config(DataConfig(train_dir=tmp_path))
    assert str(caught.value) == f"{tmp_path}: no training images found"
