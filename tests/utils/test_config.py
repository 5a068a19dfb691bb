import pytest

import train
from utils.config import load_config, parse_override, read_recipe
from utils.errors import ConfigError


def write(tmp_path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_and_overrides_typed(tmp_path):
    cfg = load_config(write(tmp_path, "trainer: {epochs: 3}\n"), ["optimizer.lr=1e-4", "data.age_bounds=[30, 58]"])
    assert cfg.trainer.epochs == 3 and cfg.optimizer.lr == pytest.approx(1e-4)
    assert cfg.data.age_bounds == (30, 58)


def test_override_value_parsing():
    assert parse_override("a.b=1e-3") == (["a", "b"], 1e-3)
    assert parse_override("x=true") == (["x"], True)
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_override("nonsense")


@pytest.mark.parametrize("text,overrides,expected", [
    ("trainer: {epocs: 3}\n", [], r"c\.yaml: trainer\.epocs: unknown key"),
    ("optimizer: {lr: fast}\n", [], r"c\.yaml: optimizer\.lr: .*(got 'fast')"),
    ("optimizer: {lr: -0.1}\n", [], r"optimizer\.lr: Input should be greater than 0"),
    ("data: {val_ratio: 1.0}\n", [], r"data\.val_ratio: Input should be less than 1"),
    ("model: {backbone: resnet_18}\n", [], r"model\.backbone: unknown timm model 'resnet_18' \(did you mean: .*resnet18"),  # noqa: E501
    ("optimizer: {name: adamww}\n", [], r"optimizer\.name: unknown optimizer 'adamww' \(did you mean: adamw"),
    ("loss: {name: cee}\n", [], r"loss\.name: unknown value .cee. \(did you mean: ce"),
    ("model: {head: shallow, activation: gleu}\n", [], r"model\.activation: unknown activation 'gleu' \(did you mean: gelu"),  # noqa: E501
    ("data: {dataset: MaskSplitDataset}\n", [], r"data\.dataset: unknown value 'MaskSplitDataset' \(did you mean: MaskSplitByProfileDataset"),  # noqa: E501
    ("trainer: {monitor: best f1}\n", [], r"trainer\.monitor: must be 'min\|max <metric>'"),
    ("", ["trainer.epochs=0"], r"override 'trainer.epochs=0': trainer\.epochs"),
    ("", ["trainer.nope=1"], r"override 'trainer.nope=1': trainer\.nope: unknown key"),
    ("data: [1, 2\n", [], r"c\.yaml: line \d+ invalid YAML"),
])
def test_bad_config_one_line_naming_key(tmp_path, text, overrides, expected):
    with pytest.raises(ConfigError, match=expected) as err:
        load_config(write(tmp_path, text), overrides)
    assert "\n" not in str(err.value)


def test_cli_bad_config_exit_2_and_nothing_written(tmp_path, capsys):
    cfg = write(tmp_path, f"save_dir: {tmp_path / 'saved'}\ntrainer: {{epochs: -1}}\n")
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--config", str(cfg)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "trainer.epochs" in err and "c.yaml" in err
    assert not (tmp_path / "saved").exists()


def test_shipped_configs_validate():
    from pathlib import Path

    for path in sorted((Path(__file__).parents[2] / "configs").glob("*.yaml")):
        cfg = load_config(path)
        assert cfg.name and cfg.model.backbone
        raw = read_recipe(path)
        assert cfg.model.pretrained == raw["model"]["pretrained"]
        assert cfg.model.pretrained == ("demo" not in path.name)  # GPU recipes start from pretrained weights


@pytest.mark.parametrize("overrides, culprit", [
    (["model.head=multi", "loss.class_weights=auto"], "loss.class_weights"),
    (["data.val_ratio=0", "trainer.freeze.patience=2"], "trainer.freeze.patience"),
    (["data.val_ratio=0", "scheduler.name=plateau"], "scheduler.name: plateau"),
    (["scheduler.name=plateau", "scheduler.decay_rate=1.5"], "decay_rate"),
])
def test_combinations_that_would_do_nothing_are_refused(overrides, culprit):
    with pytest.raises(ConfigError, match=culprit):
        load_config(None, overrides)
    load_config(None, overrides[1:])  # each part alone is fine


def test_a_recipe_inherits_its_base_and_overrides_keys(tmp_path):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "base.yaml").write_text(
        "name: base\ndata: {batch_size: 8, val_ratio: 0.3}\nmodel: {backbone: resnet18, head: shallow}\n"
        "augment: {train: [{name: HorizontalFlip}]}\n")
    (tmp_path / "recipes" / "child.yaml").write_text(
        "base: base.yaml\nname: child\ndata: {batch_size: 16}\naugment: {train: []}\n")
    config = load_config(tmp_path / "recipes" / "child.yaml", ["model.head=linear"])
    assert config.name == "child" and config.data.batch_size == 16 and config.data.val_ratio == 0.3
    assert config.model.backbone == "resnet18" and config.model.head == "linear"
    assert config.augment.train == []  # a list replaces, it does not append
    assert "base" not in config.to_dict()


@pytest.mark.parametrize("files, message", [
    ({"a.yaml": "base: a.yaml\n"}, "a.yaml: base 'a.yaml' leads back to itself"),
    ({"a.yaml": "base: b.yaml\n", "b.yaml": "base: a.yaml\n"}, "b.yaml: base 'a.yaml' leads back to itself"),
    ({"a.yaml": "base: [b.yaml]\n"}, "a.yaml: base must be the path of another config file"),
    ({"a.yaml": "base: missing.yaml\n"}, "missing.yaml: config file not found"),
    ({"a.yaml": "base: sub\n", "sub/x.yaml": "name: x\n"}, "sub: config file not found"),  # a folder
    ({"a.yaml": "base: l.yaml\n", "l.yaml": "- 1\n- 2\n"}, "l.yaml: top level must be a mapping, got list"),
    ({"a.yaml": "base: w.yaml\n", "w.yaml": b"\xff\xfe\x00name: x"}, "w.yaml: not UTF-8 text"),
    ({"a.yaml": "base: ''\n"}, "a.yaml: base must be the path of another config file, got ''"),
])
def test_bad_bases_are_one_line_errors(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "a.yaml")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_base_is_found_beside_its_recipe_from_any_working_directory(tmp_path, monkeypatch):
    (tmp_path / "recipes" / "deep").mkdir(parents=True)
    (tmp_path / "recipes" / "base.yaml").write_text("name: base\ndata: {batch_size: 8}\n")
    (tmp_path / "recipes" / "deep" / "child.yaml").write_text("base: ../base.yaml\nname: child\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    for spelled in ("../recipes/deep/child.yaml", str(tmp_path / "recipes" / "deep" / "child.yaml")):
        assert load_config(spelled).data.batch_size == 8


def test_shipped_recipes_that_inherit_resolve_to_complete_configs():
    from helpers import ROOT

    child = load_config(ROOT / "configs" / "convnext_small_shallow.yaml")
    parent = load_config(ROOT / "configs" / "swin_b.yaml")
    assert child.model.backbone.startswith("convnext_small") and child.model.head == parent.model.head == "shallow"
    assert child.trainer == parent.trainer and child.loss == parent.loss


def test_monitor_is_typed_and_written_in_its_string_form(tmp_path):
    from utils.config import MonitorSpec, save_config

    config = load_config(None, ["trainer.monitor=min val_loss"])
    assert config.trainer.monitor == MonitorSpec("min", "val_loss") and config.trainer.monitor.direction == "minimize"
    assert config.to_dict()["trainer"]["monitor"] == "min val_loss"  # config.yaml and checkpoints keep the string
    save_config(config, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml").trainer.monitor == config.trainer.monitor
    mapping = load_config(None, ["trainer.monitor={mode: max, metric: val_acc}"]).trainer.monitor
    assert (mapping.mode, mapping.metric, mapping.needs_validation, mapping.on_ema) == ("max", "val_acc", True, False)
    assert not load_config(None, ["trainer.monitor=min train_loss"]).trainer.monitor.needs_validation


def float_keys():
    from tools.config_reference import rows
    from utils.config import Config

    return [key for key, kind, _, _ in rows(Config) if kind.startswith("float") or "[float" in kind]


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_every_number_of_the_schema_is_finite(value):
    keys = float_keys()
    assert {"optimizer.lr", "augment.std", "loss.task_weights", "trainer.ema.decay"} <= set(keys)
    for key in keys:
        text = f"[{value}, 1, 1]" if "std" in key or "mean" in key or "task_weights" in key else value
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(None, [f"{key}={text}"])


@pytest.mark.parametrize("override, message", [
    ("augment.std=[0,0,0]", "augment.std: must be three positive numbers"),
    ("loss.task_weights=[1,-1,1]", "loss.task_weights: must be three non-negative weights"),
    ("loss.task_weights=[0,0,0]", "with a positive sum"),
])
def test_numbers_that_would_only_fail_mid_run_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_trainer_threads_sets_the_process_threads(demo_data, tmp_path, monkeypatch):
    import torch

    from helpers import ROOT, tiny_overrides
    from trainer.lifecycle import seeded_parts

    before = torch.get_num_threads()
    try:
        seeded_parts(load_config(ROOT / "configs/demo.yaml", tiny_overrides(demo_data, tmp_path,
                                                                            **{"trainer.threads": 1})))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ConfigError, match="trainer.threads"):
        load_config(None, ["trainer.threads=0"])
