"""The command lines: instant --help, options and overrides in any order, contradictions refused."""
import subprocess
import sys

import pytest

import inference
import train
from helpers import ROOT, scaled

PROBE = "import sys, {m}; {m}.parse_args({argv!r}); print('torch' in sys.modules, 'timm' in sys.modules)"


@pytest.mark.parametrize("module", ["train", "inference"])
def test_parsing_imports_no_torch(module):
    argv = ["--config", "c.yaml"] if module == "train" else ["--ckpt", "run"]
    out = subprocess.run([sys.executable, "-c", PROBE.format(m=module, argv=argv)], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_help_is_grouped_and_points_to_the_config_reference():
    text = subprocess.run([sys.executable, "train.py", "--help"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "what to train" in text and "RUN_OR_PTH" in text and "docs/config.md" in text


def test_flags_and_overrides_in_any_order():
    args = train.parse_args(["--config", "c.yaml", "data.n_folds=5", "--all-folds", "trainer.epochs=2"])
    assert args.all_folds and args.overrides == ["data.n_folds=5", "trainer.epochs=2"]
    args = inference.parse_args(["model.x=1", "--ckpt", "r", "--config", "c.yaml", "--tta"])
    assert args.tta and args.overrides == ["model.x=1"]


@pytest.mark.parametrize("argv", [["--config", "c.yaml", "--resume", "run"], [], ["--resume", "run", "--all-folds"]])
def test_train_contradictions_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(argv)
    assert exit_info.value.code == 2 and "error:" in capsys.readouterr().err


def test_inference_overrides_without_config_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        inference.parse_args(["--ckpt", "run", "data.batch_size=4"])
    assert exit_info.value.code == 2 and "need --config" in capsys.readouterr().err


@pytest.mark.slow  # a subprocess or a worker pool: make test only
@pytest.mark.parametrize("script", ["train", "tune"])
def test_a_config_typo_fails_before_torch_is_imported(script):

    argv = ["--config", "configs/demo.yaml", "trainer.epoch=3"]
    if script == "tune":
        argv += ["--space", "configs/search/demo.yaml"]
    code = (f"import sys, {script}\ntry:\n    {script}.main({argv!r})\nexcept SystemExit as e:\n"
            "    print(e.code, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=scaled(120))
    assert done.stdout.split() == ["2", "False"], done.stdout + done.stderr
    assert "trainer.epoch: unknown key (did you mean: epochs?)" in done.stderr
