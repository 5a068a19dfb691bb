"""Files and surroundings from other systems: folders and photos that are links, loops, directories or empty;
non-ASCII and spaces in every path; no HOME, an unusable temp dir and the C locale. Each is handled or is one
line naming the folder at fault (exit 2), before anything is written."""
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

import train
from data_loader.people import list_train_images
from helpers import ROOT, fails_in_one_line, scaled, tiny_overrides


def copy_data(demo_data, where):
    shutil.copytree(demo_data, where)
    return where


def person_folders(data):
    return sorted((data / "train" / "images").iterdir())


def photo(folder, stem):
    return next(folder.glob(f"{stem}.*"))


def test_linked_person_folders_and_photos_are_read_through_their_links(demo_data, tmp_path):
    data = copy_data(demo_data, tmp_path / "data")
    first, second = person_folders(data)[:2]
    moved = tmp_path / "elsewhere" / first.name
    shutil.move(first, moved.parent.mkdir() or moved)
    first.symlink_to(moved, target_is_directory=True)
    picture = photo(second, "mask1")
    target = tmp_path / f"shared{picture.suffix}"
    shutil.move(picture, target)
    picture.symlink_to(target)
    images = list_train_images(data / "train")
    assert len(images) == len(list_train_images(demo_data / "train"))
    assert str(picture) in set(images["path"]) and images["path"].str.contains(first.name).sum() == 7


@pytest.mark.parametrize("damage, message", [
    ("dangling photo link", "missing image(s) mask2"),
    ("photo is a folder", "missing image(s) mask3"),
    ("folder links to itself", "person folder not found"),
    ("empty folder", "missing image(s) mask1, mask2, mask3, mask4, mask5, incorrect_mask, normal"),
])
def test_broken_links_loops_and_empty_folders_are_one_line_naming_the_folder(demo_data, tmp_path, capsys, damage,
                                                                             message):
    data = copy_data(demo_data, tmp_path / "data")
    folder = person_folders(data)[2]
    if damage == "dangling photo link":
        picture = photo(folder, "mask2")
        picture.unlink()
        picture.symlink_to(tmp_path / "gone.jpg")
    elif damage == "photo is a folder":
        picture = photo(folder, "mask3")
        picture.unlink()
        picture.mkdir()
    else:
        shutil.rmtree(folder)
        folder.symlink_to(folder) if damage == "folder links to itself" else folder.mkdir()
    argv = ["--config", str(ROOT / "configs/demo.yaml"), *tiny_overrides(data, tmp_path / "saved")]
    fails_in_one_line(train.main, argv, capsys, str(folder), message)
    assert not (tmp_path / "saved").exists()


@pytest.mark.slow
def test_non_ascii_paths_in_the_c_locale_without_home_or_a_usable_temp_dir(demo_data, tmp_path):
    """The whole path a user takes (train, predict) with Korean folder names and spaces, LC_ALL=C, no HOME and a
    TMPDIR that does not exist."""
    data = copy_data(demo_data, tmp_path / "데이터 세트")
    save_dir = tmp_path / "저장 폴더"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C",
           "TMPDIR": str(tmp_path / "no such tmp"), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    trained = subprocess.run([sys.executable, "train.py", "--config", "configs/demo.yaml",
                              *tiny_overrides(data, save_dir)], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=scaled(300))
    assert trained.returncode == 0, trained.stderr[-2000:]
    (run,) = (save_dir / "tiny").iterdir()
    predicted = subprocess.run([sys.executable, "inference.py", "--ckpt", str(run)], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=scaled(300))
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    submission = pd.read_csv(run / "submission.csv")
    assert len(submission) == len(pd.read_csv(data / "eval" / "info.csv")) and submission["ans"].between(0, 17).all()
    assert not (tmp_path / "no such tmp").exists()


@pytest.mark.parametrize("damage", ["dangling link", "folder"])
def test_an_eval_photo_that_is_a_broken_link_or_a_folder_is_one_line_naming_its_row(demo_data, tmp_path, capsys,
                                                                                     damage):
    import inference
    from helpers import untrained_checkpoint

    data = copy_data(demo_data, tmp_path / "data")
    ckpt = untrained_checkpoint(data, tmp_path / "best.pth")
    name = pd.read_csv(data / "eval" / "info.csv")["ImageID"].iloc[3]
    picture = data / "eval" / "images" / name
    picture.unlink()
    picture.symlink_to(tmp_path / "gone.jpg") if damage == "dangling link" else picture.mkdir()
    out = tmp_path / "submission.csv"
    fails_in_one_line(inference.main, ["--ckpt", str(ckpt), "--out", str(out)], capsys, "info.csv: line 5",
                      str(picture), "not found")
    assert not out.exists()
