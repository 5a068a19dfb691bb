"""Bad input and numerical faults end in one clear line, never a traceback or half-written output."""
import shutil

import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import train
from conftest import ROOT, tiny_overrides
from data_loader.people import list_train_images
from trainer.trainer import NonFiniteLoss
from utils.config import Config, build_config
from utils.errors import ConfigError, DataError, UserError


class NanAt(torch.nn.Module):
    """Cross-entropy that returns NaN on the listed calls."""

    def __init__(self, bad_calls):
        super().__init__()
        self.bad_calls, self.calls = set(bad_calls), 0

    def forward(self, logits, targets):
        loss = torch.nn.functional.cross_entropy(logits, targets)
        self.calls += 1
        return loss * float("nan") if self.calls - 1 in self.bad_calls else loss


def test_nan_loss_stops_with_epoch_and_step(make_trainer, tmp_path):
    trainer = make_trainer()
    trainer.criterion = NanAt({3})
    with pytest.raises(NonFiniteLoss, match=r"NaN/Inf at epoch 1 step 3"):
        trainer.fit()
    assert not (tmp_path / "last.pth").exists() and not (tmp_path / "best.pth").exists()


def test_nan_loss_keeps_last_good_checkpoint(make_trainer, tmp_path):
    trainer = make_trainer(**{"trainer.epochs": 2})
    trainer.run_epoch()
    good = torch.load(tmp_path / "last.pth", weights_only=True)["model"]
    trainer.criterion = NanAt({0})
    with pytest.raises(NonFiniteLoss, match="epoch 2 step 0"):
        trainer.run_epoch()
    kept = torch.load(tmp_path / "last.pth", weights_only=True)
    assert kept["epoch"] == 1
    assert all(torch.equal(v, good[k]) for k, v in kept["model"].items())


def test_max_bad_steps_skips_a_few(make_trainer, tmp_path):
    trainer = make_trainer(**{"trainer.max_bad_steps": 2})
    trainer.criterion = NanAt({1, 4})
    trainer.fit()
    assert trainer.bad_steps == 2
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    trainer2 = make_trainer(tmp_path / "b", **{"trainer.max_bad_steps": 1})
    trainer2.criterion = NanAt({1, 4})
    with pytest.raises(NonFiniteLoss, match="trainer.max_bad_steps=1"):
        trainer2.fit()


def test_checkpoint_of_another_architecture_is_a_clear_error(demo_data, tmp_path, capsys):
    done = train.main(["--config", str(ROOT / "configs/demo.yaml"), *tiny_overrides(demo_data, tmp_path)])
    state = torch.load(f"{done['run_dir']}/last.pth", weights_only=True)
    state["config"]["model"]["backbone"] = "resnet18"  # weights are mobilenet's
    state["epoch"] = 0
    torch.save(state, tmp_path / "foreign.pth")
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--resume", str(tmp_path / "foreign.pth")])
    assert exit_info.value.code == 2
    assert "foreign.pth: cannot resume" in capsys.readouterr().err
    import inference

    with pytest.raises(SystemExit):
        inference.main(["--ckpt", str(tmp_path / "foreign.pth")])
    assert "foreign.pth: weights do not fit resnet18" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"GIF89a not really", b"\x89PNG\r\n\x1a\n broken"])
def test_empty_or_non_image_files(demo_data, tmp_path, content):
    data = tmp_path / "train"
    shutil.copytree(demo_data / "train", data)
    victim = sorted((data / "images").glob("*/normal.*"))[0]
    victim.write_bytes(content)
    with pytest.raises(DataError, match=victim.name):
        list_train_images(data)


def test_truncated_jpeg_found_before_training(demo_data, tmp_path):
    data = tmp_path / "train"
    shutil.copytree(demo_data / "train", data)
    victim = sorted((data / "images").glob("*/mask1.jpg"))[0]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises(DataError, match=rf"{victim.name}: truncated or damaged JPEG"):
        list_train_images(data)
    images = list_train_images(data, skip_bad_images=True)
    assert str(victim) not in set(images["path"])


CSV_VALUES = st.one_of(
    st.text(max_size=8), st.integers(-5, 200).map(str), st.sampled_from(["male", "female", "60", ""])
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns=st.lists(st.sampled_from(["id", "gender", "race", "age", "path", "extra"]), min_size=1, max_size=6),
       rows=st.lists(st.lists(CSV_VALUES, min_size=6, max_size=6), max_size=5),
       raw=st.binary(max_size=40), use_raw=st.booleans())
def test_random_train_csv_gives_clean_error(tmp_path, columns, rows, raw, use_raw):
    csv = tmp_path / "train.csv"
    if use_raw:
        csv.write_bytes(raw)
    else:
        pd.DataFrame([r[: len(columns)] for r in rows], columns=columns).to_csv(csv, index=False)
    try:
        list_train_images(tmp_path)
    except DataError as err:
        message = str(err)
        assert "\n" not in message
        assert "train.csv" in message or "images" in message


SECTIONS = {name: field.annotation for name, field in Config.model_fields.items()}
LEAF_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True),
                        st.text(max_size=6), st.lists(st.integers(-2, 80), max_size=3))
KEYS = st.sampled_from(["name", "seed", "data", "model", "trainer", "optimizer", "scheduler", "loss",
                        "augment", "epochs", "lr", "backbone", "head", "val_ratio", "freeze", "monitor", "train"])


@settings(max_examples=150, deadline=None)
@given(raw=st.dictionaries(KEYS, st.one_of(LEAF_VALUES, st.dictionaries(KEYS, LEAF_VALUES, max_size=4)), max_size=5))
def test_random_config_gives_clean_error(raw):
    try:
        build_config(raw, "random.yaml")
    except ConfigError as err:
        assert str(err).startswith("random.yaml: ") and "\n" not in str(err)


def test_user_errors_are_exit_2_everywhere(tmp_path, capsys):
    import inference

    for call in (lambda: train.main(["--config", str(tmp_path / "missing.yaml")]),
                 lambda: inference.main(["--ckpt", str(tmp_path)])):
        with pytest.raises(SystemExit) as exit_info:
            call()
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.count("\n") == 1
    assert issubclass(ConfigError, UserError) and issubclass(DataError, UserError)


def test_undecodable_eval_image_is_error_naming_it(demo_data, tmp_path, capsys):
    import inference

    done = train.main(["--config", str(ROOT / "configs/demo.yaml"), *tiny_overrides(demo_data, tmp_path / "s")])
    eval_dir = tmp_path / "eval"
    shutil.copytree(demo_data / "eval", eval_dir)
    victim = eval_dir / "images" / pd.read_csv(eval_dir / "info.csv")["ImageID"].iloc[-1]
    victim.write_bytes(victim.read_bytes()[:500])
    out = tmp_path / "sub.csv"
    with pytest.raises(SystemExit) as exit_info:
        inference.main(["--ckpt", done["run_dir"], "--data", str(eval_dir), "--out", str(out)])
    assert exit_info.value.code == 2
    assert victim.name in capsys.readouterr().err and not out.exists()


def test_cuda_out_of_memory_suggests_keys(demo_data, tmp_path, monkeypatch, capsys):
    from trainer.trainer import Trainer

    def oom(self, run_logger=None):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "fit", oom)
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--config", str(ROOT / "configs/demo.yaml"), *tiny_overrides(demo_data, tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "data.batch_size=16" in err and "trainer.amp" in err
    (run_dir,) = list((tmp_path / "tiny").iterdir())
    from utils.logger import read_summary

    assert read_summary(run_dir)["status"] == "crashed"
