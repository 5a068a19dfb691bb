"""Helpers shared by the tests (fixtures live in conftest.py)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def fake_images(n_people: int, seed: int = 0) -> pd.DataFrame:
    """An image table of `n_people` people (7 images each), without files."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_people):
        gender, group = int(rng.integers(2)), int(rng.choice(3, p=[0.45, 0.45, 0.1]))
        rows += [(f"{k:06d}", gender, group, m) for m in (0, 0, 0, 0, 0, 1, 2)]
    return pd.DataFrame(rows, columns=["person_id", "gender", "age_group", "mask"])


def hand_strata(images: pd.DataFrame) -> pd.Series:
    """person -> (gender, age group), worked out without `person_strata` so that tests of the split can use
    it as an independent reference."""
    return pd.Series({pid: (rows["gender"].iloc[0], rows["age_group"].iloc[0])
                      for pid, rows in images.groupby("person_id")})


def tiny_overrides(data: Path, save_dir: Path, **extra: object) -> list[str]:
    """Overrides that make any config tiny and fast on CPU. A face crop given in `extra` replaces the recipe's
    centre crop (the two exclude each other)."""
    base = {
        "name": "tiny",
        "save_dir": save_dir,
        "data.train_dir": data / "train",
        "data.eval_dir": data / "eval",
        "data.batch_size": 16,
        "data.num_workers": 0,
        "augment.image_size": "[64, 48]",
        "model.backbone": "mobilenetv3_small_050",
        "model.pretrained": "false",
        "trainer.epochs": 1,
        "trainer.device": "cpu",
        "trainer.swa": "null",  # tests of averaging switch it on themselves
    }
    if any(key.startswith("augment.face_crop") for key in extra):
        base["augment.center_crop"] = "null"
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


def untrained_checkpoint(data: Path, path: Path, seed: int = 0, **extra: object) -> Path:
    """A `best.pth` at `path` of an untrained tiny network (weights drawn with `seed`) in the checkpoint format:
    what prediction reads, without a training run."""
    import torch

    from model.classifier import build_model
    from trainer.checkpoint import save_checkpoint
    from utils.config import load_config
    from utils.labels import class_names

    config = load_config(ROOT / "configs/demo.yaml", tiny_overrides(data, path.parent, **extra))
    torch.manual_seed(seed)
    model = build_model(config.model)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint({"config": config.to_dict(), "model": model.state_dict(), "class_names": class_names(),
                     "epoch": 1}, path)
    return path


def fails_in_one_line(main: Callable[[Sequence[str]], Any], argv: Sequence[str], capsys: Any, *expected: str) -> str:
    """`main(argv)` exits 2 with exactly one `error:` line (log lines before it aside) and no traceback;
    returns that line, which holds every `expected` text."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert exit_info.value.code == 2, err
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]) and "Traceback" not in err, err
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


def process_fails_in_one_line(done: subprocess.CompletedProcess, *expected: str) -> str:
    """The same check for a finished subprocess (`capture_output=True, text=True`)."""
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


GRACE_HOPPER_FACE = (155, 105, 222, 222)  # x, y, w, h of the face in matplotlib's grace_hopper.jpg (512 x 600)


def draw_mask(image, face, state: str, color=(150, 190, 220)):
    """A copy of PIL `image` with a mask drawn over the `face` box: `mask` (nose to chin), `incorrect`
    (mouth and chin only) or `normal` (none)."""
    from PIL import ImageDraw

    image = image.copy()
    if state != "normal":
        x, y, w, h = face
        top = y + (0.52 if state == "mask" else 0.70) * h
        ImageDraw.Draw(image).polygon([(x + 0.10 * w, top), (x + 0.90 * w, top), (x + 0.86 * w, y + 0.95 * h),
                                       (x + 0.5 * w, y + 1.08 * h), (x + 0.14 * w, y + 0.95 * h)], fill=color)
    return image




TIMEOUT_SCALE = float(os.environ.get("MASK_TEST_TIMEOUT_SCALE", "1"))  # e.g. 3 on a loaded or slow machine


def scaled(seconds: float) -> float:
    """A subprocess time limit, stretched by MASK_TEST_TIMEOUT_SCALE (the limits fit an idle 2-core machine
    with room to spare)."""
    return seconds * TIMEOUT_SCALE


def descendants(pid: int) -> list[int]:
    """Every running process below `pid`, zombies left out (read from /proc; empty where there is none)."""
    children: dict[int, list[int]] = {}
    zombies = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        if fields[0] == "Z":
            zombies.add(int(stat.parent.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo += children.get(child, [])
    return [p for p in found if p not in zombies]


def stop_descendants(pid: int, grace: float = 3.0) -> None:
    """SIGTERM every process below `pid`, then SIGKILL what is left after `grace` seconds."""
    import signal
    import time

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for child in descendants(pid):
            try:
                os.kill(child, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.time() + grace
        while descendants(pid) and time.time() < deadline:
            time.sleep(0.1)


# ----- a Trainer over ten 3x2x2 images, fast enough for any test of the loop -----------------------------------
N_IMAGES, BATCH = 10, 2


class Toy:
    """N_IMAGES fixed 3x2x2 images with labels; yields (image, label, index) like ImageDataset."""

    def __init__(self) -> None:
        import torch

        generator = torch.Generator().manual_seed(0)
        self.images = torch.randn(N_IMAGES, 3, 2, 2, generator=generator)
        self.labels = torch.arange(N_IMAGES) % 18
        self.paths = [f"img{i}.jpg" for i in range(N_IMAGES)]

    def __len__(self) -> int:
        return N_IMAGES

    def __getitem__(self, index: int):
        return self.images[index], int(self.labels[index]), index


def toy_trainer(tmp_path=None, scores=None, criterion=None, model=None, **cfg):
    """A Trainer over Toy (5 batches of 2, cross-entropy unless `criterion`, a linear `model` unless given)
    whose validation returns `scores[epoch]` as val_f1; without `scores` it has no validation set."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader

    from model.classifier import MaskClassifier
    from trainer.trainer import EvalResult, Trainer
    from utils.config import TrainerConfig

    torch.manual_seed(0)
    cfg.setdefault("amp", "none")  # exact fp32 arithmetic whatever the CPU (auto trains in bf16 where it is native)
    if model is None:
        model = MaskClassifier(nn.Sequential(nn.Flatten(), nn.Linear(12, 6)), nn.Linear(6, 18))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loader = DataLoader(Toy(), batch_size=BATCH, shuffle=False)
    trainer = Trainer(model=model, criterion=criterion or nn.CrossEntropyLoss(), optimizer=optimizer,
                      scheduler=None, train_loader=loader, val_loader=loader if scores is not None else None,
                      cfg=TrainerConfig(device="cpu", **cfg), device=torch.device("cpu"),
                      metadata={"config": {"trainer": {"monitor": "max val_f1"}}}, run_dir=tmp_path)
    if scores is not None:
        def scripted() -> tuple[dict, EvalResult]:
            metrics = {"val_f1": scores[trainer.epoch], "val_loss": 1.0, "val_acc": 0.5}
            return metrics, EvalResult(metrics, None, None, [])
        trainer.evaluate_monitored = scripted
    return trainer


# val_predictions.csv of made-up runs (the comparison's tests)
def photos(n_people: int, seed: int = 0, offset: int = 0) -> tuple[list[str], np.ndarray]:
    """Paths and labels of n people (7 photos each) in the competition's layout."""
    rng = np.random.default_rng(seed)
    paths, labels = [], []
    for k in range(offset, offset + n_people):
        gender_age = int(rng.integers(6))
        for stem, mask in (*((f"mask{i}", 0) for i in range(1, 6)), ("incorrect_mask", 1), ("normal", 2)):
            paths.append(f"/data/train/images/{k:06d}_male_Asian_40/{stem}.jpg")
            labels.append(mask * 6 + gender_age)
    return paths, np.array(labels)


def one_hot(preds: np.ndarray) -> np.ndarray:
    probs = np.full((len(preds), 18), 0.01)
    probs[np.arange(len(preds)), preds] = 1 - 0.01 * 17
    return probs


def noisy(labels: np.ndarray, accuracy: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random(len(labels)) < accuracy, labels, rng.integers(0, 18, len(labels)))


def make_run(path: Path, paths, labels, preds, **config) -> Path:
    """A finished run's directory as the comparison reads it: val_predictions.csv and config.yaml."""
    import yaml

    from utils.predictions import predictions_frame, write_predictions
    from utils.run_dir import RunDir

    run = RunDir(path)
    path.mkdir(parents=True)
    write_predictions(run.val_predictions, predictions_frame(paths, labels, one_hot(preds)))
    run.config.write_text(yaml.safe_dump({"seed": 42, "data": {"val_ratio": 0.2}, **config}))
    return path


def predict_with(ckpts: Sequence[Any], *, device: Any = None, eval_dir: Any = None, tta: bool = False,
                 batch_size: Any = None, num_workers: Any = None, which: Any = None, weights: Any = None,
                 groups: bool = False) -> Any:
    """What `inference.py --ckpt ...` does: the checkpoints resolved once, options fixed, then soft-voted
    (`ensemble_predict`), or with `groups` the per-entry probabilities (`predict_groups`)."""
    import torch

    from predict.predictor import PredictOptions, ensemble_predict, predict_groups, resolve_models

    models = resolve_models(ckpts, which)
    options = PredictOptions(device=device or torch.device("cpu"), eval_dir=models.eval_dir(eval_dir), tta=tta,
                             batch_size=batch_size, num_workers=num_workers)
    return predict_groups(models, options) if groups else ensemble_predict(models, options, weights=weights)


def small_eval(demo_data, tmp_path, n: int):
    """A copy of the demo's eval folder with its first `n` photos only (face detection runs over a folder)."""
    import pandas as pd

    info = pd.read_csv(demo_data / "eval" / "info.csv", dtype=str).head(n)
    out = tmp_path / "eval"
    (out / "images").mkdir(parents=True)
    for name in info["ImageID"]:
        (out / "images" / name).write_bytes((demo_data / "eval" / "images" / name).read_bytes())
    info.to_csv(out / "info.csv", index=False)
    return out
