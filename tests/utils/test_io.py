"""utils.io: a write either lands whole or leaves the previous file and no temp file behind."""
import os

import pytest

from utils.io import atomic_path, atomic_torch_save, atomic_write_text, atomic_write_with, current_umask


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_writer_that_fails_half_way_leaves_the_previous_file_whole(tmp_path):
    out = tmp_path / "submission.csv"
    atomic_write_text(out, "ImageID,ans\na.jpg,3\n")

    def half_then_fail(tmp):
        tmp.write_text("ImageID,ans\nb.jp")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_with(out, half_then_fail)
    assert out.read_text() == "ImageID,ans\na.jpg,3\n" and leftovers(tmp_path) == []


def test_a_failed_first_write_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / "new.csv") as tmp:
            tmp.write_text("partial")
            raise ValueError("stop")
    assert list(tmp_path.iterdir()) == []


def test_a_write_lands_whole_in_folders_made_for_it(tmp_path):
    out = tmp_path / "a" / "b" / "notes.txt"
    atomic_write_text(out, "first\n")
    atomic_write_text(out, "second\n")
    assert out.read_text() == "second\n" and leftovers(out.parent) == []


def test_the_temp_file_sits_beside_the_target_hidden_and_is_renamed_onto_it(tmp_path):
    out = tmp_path / "metrics.csv"
    with atomic_path(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".metrics.csv.") and tmp.suffix == ".tmp"
        assert not out.exists()  # nothing at the target until the block succeeds
        tmp.write_text("epoch\n1\n")
    assert out.read_text() == "epoch\n1\n" and not tmp.exists()


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_written_files_get_the_modes_the_umask_allows(tmp_path, mask):
    old = os.umask(mask)
    try:
        assert current_umask() == mask and current_umask() == mask  # reading it does not change it
        atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_torch_checkpoint_is_saved_atomically_and_loads_back(tmp_path):
    import torch

    state = {"w": torch.arange(4.0), "epoch": 3}
    atomic_torch_save(state, tmp_path / "last.pth")
    loaded = torch.load(tmp_path / "last.pth", weights_only=True)
    assert torch.equal(loaded["w"], state["w"]) and loaded["epoch"] == 3 and leftovers(tmp_path) == []
