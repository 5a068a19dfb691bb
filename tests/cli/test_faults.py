"""Fault matrix: each class of bad input or fault gets one line naming the culprit and exit code 2,
before anything is written, or is handled correctly (docs/troubleshooting.md lists the classes)."""
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import inference
import train
from data_loader import cache as cache_module
from data_loader.people import list_train_images
from helpers import ROOT, fails_in_one_line, tiny_overrides
from utils.config import Config, build_config, load_config
from utils.errors import ConfigError, DataError, UserError
from utils.run import read_summary


def copy_train(demo_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    return data


def train_argv(data, tmp_path, **extra):
    return ["--config", str(ROOT / "configs/demo.yaml"), *tiny_overrides(data, tmp_path / "saved", **extra)]


# ----- the data set is what it claims --------------------------------------------------------------
def test_one_folder_under_two_ids(demo_data, tmp_path, capsys):
    data = copy_train(demo_data, tmp_path)
    table = pd.read_csv(data / "train" / "train.csv", dtype=str)
    twin = table.iloc[[0]].assign(id="999999")
    pd.concat([table, twin]).to_csv(data / "train" / "train.csv", index=False)
    fails_in_one_line(train.main, train_argv(data, tmp_path), capsys, "listed under ids", "999999")
    assert not (tmp_path / "saved").exists()


@pytest.mark.parametrize("extra, expected", [
    ({"data.val_ratio": 0.99}, "leaves no training images"),
    ({"data.val_ratio": 0.001}, "leaves no validation images"),
    ({"data.n_folds": 40}, "only 30 people"),
])
def test_splits_that_cannot_train_or_validate(demo_data, tmp_path, capsys, extra, expected):
    fails_in_one_line(train.main, train_argv(demo_data, tmp_path, **extra), capsys, expected)
    assert not (tmp_path / "saved").exists()


def test_header_only_info_csv(demo_data, run_copy, tmp_path, capsys):
    data = copy_train(demo_data, tmp_path)
    (data / "eval" / "info.csv").write_text("ImageID,ans\n")
    fails_in_one_line(inference.main, ["--ckpt", str(run_copy), "--data", str(data / "eval"), "--out",
                                       str(tmp_path / "s.csv")], capsys, "info.csv: no rows")
    assert not (tmp_path / "s.csv").exists()


def test_resume_from_another_directory_reads_the_same_data(demo_data, tmp_path, monkeypatch):
    monkeypatch.chdir(demo_data)  # relative data paths, as a user types them
    relative = {"data.train_dir": "train", "data.eval_dir": "eval"}
    done = train.main(["--config", str(ROOT / "configs/demo.yaml"),
                       *tiny_overrides(Path(".."), tmp_path / "saved", **relative)])
    stored = load_config(os.path.join(done["run_dir"], "config.yaml"))
    assert stored.data.train_dir == demo_data / "train" and stored.data.train_dir.is_absolute()
    monkeypatch.chdir(tmp_path)  # elsewhere, where ./train does not exist
    assert train.main(["--resume", done["run_dir"], "trainer.epochs=2"])["epochs"] == 2


# ----- numbers are sane before they are used ---------------------------------------------------------
@pytest.mark.parametrize("override, culprit", [
    ("seed=-1", "seed"), ("augment.image_size=[20000,20000]", "image_size"),
    ("optimizer.lr=.nan", "optimizer.lr"), ("data.batch_size=0", "batch_size"),
])
def test_numbers_out_of_range_are_config_errors(override, culprit):
    with pytest.raises(ConfigError, match=culprit):
        load_config(ROOT / "configs/demo.yaml", [override])


def test_yaml_alias_bomb_is_refused(tmp_path):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}]"
               for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(["defs:", *("  " + line for line in levels), "name: *a8"]))
    with pytest.raises(ConfigError, match="expands to more than"):
        load_config(path)


def test_nan_vote_weights_and_nan_checkpoints(run_copy, tmp_path, capsys):
    fails_in_one_line(inference.main, ["--ckpt", str(run_copy), "--weights", "nan"], capsys, "non-negative")
    state = torch.load(run_copy / "best.pth", weights_only=True)
    first = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][first] = torch.full_like(state["model"][first], float("nan"))
    torch.save(state, tmp_path / "nan.pth")
    fails_in_one_line(inference.main, ["--ckpt", str(tmp_path / "nan.pth")], capsys, "non-finite weights", first)


def test_cache_that_cannot_fit_is_refused(demo_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cache_module, "available_memory", lambda: 1000)
    fails_in_one_line(train.main, train_argv(demo_data, tmp_path, **{"data.cache": "memory"}), capsys,
                      "data.cache=memory needs")
    assert not (tmp_path / "saved").exists()


# ----- every failure is one line, exit 2 --------------------------------------------------------------
def test_save_dir_that_is_a_file(demo_data, tmp_path, capsys):
    (tmp_path / "saved").write_text("not a directory")
    fails_in_one_line(train.main, train_argv(demo_data, tmp_path), capsys, "saved")


def test_out_that_is_a_directory(run_copy, tmp_path, capsys):
    (tmp_path / "outdir").mkdir()
    fails_in_one_line(inference.main, ["--ckpt", str(run_copy), "--out", str(tmp_path / "outdir")], capsys,
                      "outdir")


def test_non_utf8_config(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    fails_in_one_line(train.main, ["--config", str(path)], capsys, "latin1.yaml: not UTF-8")


@pytest.mark.parametrize("damage", ["empty", "no_trainer_section"])
def test_damaged_checkpoints(run_copy, tmp_path, capsys, damage):
    path = tmp_path / "bad.pth"
    if damage == "empty":
        path.write_bytes(b"")
    else:
        state = torch.load(run_copy / "last.pth", weights_only=True)
        del state["config"]["trainer"]
        torch.save(state, path)
    for main, argv in ((train.main, ["--resume", str(path)]), (inference.main, ["--ckpt", str(path)])):
        fails_in_one_line(main, argv, capsys, "bad.pth")


def test_superscript_age(demo_data, tmp_path, capsys):
    data = copy_train(demo_data, tmp_path)
    table = pd.read_csv(data / "train" / "train.csv", dtype=str)
    table.loc[0, "age"] = "²"
    table.to_csv(data / "train" / "train.csv", index=False)
    fails_in_one_line(train.main, train_argv(data, tmp_path), capsys, "age '²'")


def test_augmentation_that_fails_only_when_applied(demo_data, tmp_path, capsys):
    config = tmp_path / "crop.yaml"
    config.write_text("augment:\n  train:\n    - {name: CenterCrop, args: {height: 2000, width: 2000}}\n"
                      "data: {jpeg_draft: false}\n")
    fails_in_one_line(train.main, ["--config", str(config), *tiny_overrides(demo_data, tmp_path / "saved")], capsys,
                      "augment.train: fails on")
    assert not (tmp_path / "saved").exists()


def test_bad_device_and_helper_clis(tmp_path, capsys):
    from tools import score

    with pytest.raises(SystemExit) as exit_info:
        inference.main(["--ckpt", "run", "--device", "gpu"])
    assert exit_info.value.code == 2 and "--device 'gpu'" in capsys.readouterr().err
    (tmp_path / "sub.csv").write_text("ImageID,label\na,1\n")
    (tmp_path / "truth.csv").write_text("ImageID,ans\na,1\n")
    fails_in_one_line(score.main, [str(tmp_path / "sub.csv"), str(tmp_path / "truth.csv")], capsys, "sub.csv",
                      "missing column")
    fails_in_one_line(score.main, [str(tmp_path / "none.csv"), str(tmp_path / "truth.csv")], capsys, "none.csv")


@pytest.mark.parametrize(("argv", "expected"), [
    (["--group-people", "--group-size", "nan"], "--group-size nan: must be a number of photos"),
    (["--group-people", "--group-size", "inf"], "--group-size inf: must be a number of photos"),
    (["--group-people", "--group-size", "0.5"], "--group-size 0.5: must be a number of photos"),
    (["--group-size", "5"], "--group-size is a hint for --group-people"),
    (["--group-people", "sometimes"], "invalid choice: 'sometimes'"),
])
def test_grouping_arguments_past_their_limits_are_refused_before_anything_is_read(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        inference.main(["--ckpt", "no-such-run", *argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and expected in err and "Traceback" not in err


# ----- any config text is a config or one error line (file modes: tests/utils/test_io.py) ---------------
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_any_config_text_is_a_config_or_a_config_error(tmp_path, text):
    path = tmp_path / "random.yaml"
    path.write_text(text)
    try:
        load_config(path)
    except ConfigError as err:
        assert "\n" not in str(err)


# ----- outputs never destroy inputs, or each other ---------------------------------------------------
@pytest.fixture(scope="module")
def guarded(demo_data, tmp_path_factory):
    """A trained run on its own copy of the data (nothing here may change it)."""
    root = tmp_path_factory.mktemp("guard")
    shutil.copytree(demo_data, root / "data")
    done = train.main(train_argv(root / "data", root))
    return root, Path(done["run_dir"])


def digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir" if path.is_dir() else "none"


@pytest.mark.parametrize("outputs, expected", [
    ({"--out": "RUN/best.pth"}, "that is a checkpoint"),
    ({"--out": "RUN/last.pth"}, "a file of run directory"),
    ({"--out": "RUN/config.yaml"}, "a file of run directory"),
    ({"--out": "DATA/eval/info.csv"}, "that is the eval table"),
    ({"--out": "ROOT/s.csv", "--pseudo-labels": "DATA/eval/info.csv"}, "--pseudo-labels"),
    ({"--out": "ROOT/s.csv", "--pseudo-labels": "ROOT/./s.csv"}, "the same file as --out"),
    ({"--out": "ROOT/s.csv", "--pseudo-labels": "RUN/summary.json"}, "a file of run directory"),
    ({"--out": "ROOT/readonly/s.csv"}, "is not writable"),
])
def test_an_output_that_would_destroy_an_input_is_refused_before_anything_is_written(guarded, capsys, outputs,
                                                                                     expected):
    root, run = guarded
    if os.geteuid() == 0 and "readonly" in str(outputs):
        pytest.skip("root may write into read-only folders")
    (root / "readonly").mkdir(exist_ok=True)
    (root / "readonly").chmod(0o555)
    places = {"RUN": str(run), "DATA": str(root / "data"), "ROOT": str(root)}
    argv = ["--ckpt", str(run)]
    for option, path in outputs.items():
        prefix, rest = path.split("/", 1)
        argv += [option, f"{places[prefix]}/{rest}"]
    watched = [run / n for n in ("best.pth", "last.pth", "config.yaml", "summary.json")] + \
        [root / "data" / "eval" / "info.csv", root / "s.csv", run / "submission.csv"]
    before = {p: digest(p) for p in watched}
    fails_in_one_line(inference.main, argv, capsys, expected)
    assert {p: digest(p) for p in watched} == before


def test_ensemble_out_that_is_an_oof_table_is_refused(guarded, capsys):
    import ensemble

    root, run = guarded
    (run / "oof.csv").write_text("path,fold,label\n")
    before = digest(run / "oof.csv")
    fails_in_one_line(ensemble.main, ["--runs", str(run), "--out", str(run / "oof.csv")], capsys, "--out",
                      "that is an oof.csv")
    assert digest(run / "oof.csv") == before
    (run / "oof.csv").unlink()


def test_duplicated_image_ids_in_info_csv_are_refused(guarded, capsys):
    root, run = guarded
    info = root / "data" / "eval" / "info.csv"
    original = info.read_text()
    lines = original.splitlines()
    try:
        info.write_text("\n".join([*lines, lines[1]]) + "\n")
        fails_in_one_line(inference.main, ["--ckpt", str(run), "--out", str(root / "dup.csv")], capsys,
                          "info.csv: line", "appears more than once")
    finally:
        info.write_text(original)
    assert not (root / "dup.csv").exists()


def test_stray_folders_in_folds_are_not_voted(guarded, caplog):
    from utils.run import model_files

    root, run = guarded
    kfold = root / "kfold" / "20250101-000000"
    for k in (0, 1):
        shutil.copytree(run, kfold / "folds" / f"fold_{k}")
    (kfold / "config.yaml").write_text("data: {n_folds: 2}\n")
    shutil.copytree(run, kfold / "folds" / "fold_1_backup")
    shutil.copytree(run, kfold / "folds" / "fold_7")
    (kfold / "folds" / "notes.txt").write_text("kept by hand\n")
    found = model_files(kfold)
    assert found == [kfold / "folds" / "fold_0" / "best.pth", kfold / "folds" / "fold_1" / "best.pth"]
    assert "fold_1_backup, notes.txt, fold_7 left out" in caplog.text


# ----- bad data, checkpoints and numbers (merged from the former test_hardening.py) ---------------------
def test_checkpoint_of_another_architecture_is_a_clear_error(run_copy, tmp_path, capsys):
    state = torch.load(run_copy / "last.pth", weights_only=True)
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


def test_undecodable_eval_image_is_error_naming_it(demo_data, run_copy, tmp_path, capsys):
    import inference

    eval_dir = tmp_path / "eval"
    shutil.copytree(demo_data / "eval", eval_dir)
    victim = eval_dir / "images" / pd.read_csv(eval_dir / "info.csv")["ImageID"].iloc[-1]
    victim.write_bytes(victim.read_bytes()[:500])
    out = tmp_path / "sub.csv"
    with pytest.raises(SystemExit) as exit_info:
        inference.main(["--ckpt", str(run_copy), "--data", str(eval_dir), "--out", str(out)])
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

    assert read_summary(run_dir)["status"] == "crashed"
