"""ONNX export: parity with PyTorch, K-fold runs as one graph or one file per fold, every head, prediction
without torch, nothing written when the check fails."""
import json
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
import torch
from support.shared import made_once

from helpers import ROOT, fails_in_one_line, predict_with, scaled, untrained_checkpoint
from predict.export import export_checkpoint
from predict.onnx_model import OnnxModel
from utils.run import model_files

pytest.importorskip("onnxruntime")


def kfold_run(demo_data, run, n_folds=2):
    for k in range(n_folds):
        untrained_checkpoint(demo_data, run / "folds" / f"fold_{k}" / "best.pth", seed=k)
    (run / "config.yaml").write_text(f"data:\n  n_folds: {n_folds}\n")
    return run


def photos(demo_data):
    import pandas as pd

    info = pd.read_csv(demo_data / "eval" / "info.csv")
    return [str(demo_data / "eval" / "images" / i) for i in info["ImageID"]]


@pytest.mark.slow  # an export each; the multi head is exported once for the module (`exported`)
@pytest.mark.parametrize("head", ["linear", "shallow"])
def test_export_matches_pytorch_for_every_head(demo_data, tmp_path, head):
    ckpt = untrained_checkpoint(demo_data, tmp_path / "run" / "best.pth", **{"model.head": head})
    ((out, spec),) = export_checkpoint(model_files(ckpt), tmp_path / "model.onnx", check_images=8, measure_speed=False)
    assert spec["parity"]["max_abs_diff"] < 1e-4 and spec["parity"]["argmax_agreement"] == 1.0
    assert spec["model"]["head"] == head and spec["image_size"] == [64, 48] and len(spec["class_names"]) == 18
    _, reference = predict_with([ckpt], device=torch.device("cpu"), eval_dir=demo_data / "eval", num_workers=0)
    onnx = OnnxModel(out, demo_data / "eval").probabilities(photos(demo_data), batch_size=5)
    assert np.abs(onnx - reference).max() < 1e-5  # the whole eval set, batches of another size


class Exported(NamedTuple):
    ckpt: Path
    model: Path
    spec: dict
    at_default: np.ndarray  # the checkpoint's probabilities before its age bounds were moved


@pytest.fixture(scope="module")
def exported(demo_data, tmp_path_factory) -> Exported:
    """One export shared by the module and its xdist workers (an export takes seconds): an untrained multi-head
    network with an ordinal age head whose fitted bounds were moved from the default, as a fit might leave them."""
    from trainer.checkpoint import load_checkpoint, save_checkpoint

    def make(where: Path) -> None:
        ckpt = untrained_checkpoint(demo_data, where / "run" / "best.pth", **{"model.head": "multi",
                                                                              "model.age": "ordinal"})
        _, at_default = predict_with([ckpt], device=torch.device("cpu"), eval_dir=demo_data / "eval", num_workers=0)
        np.save(where / "at_default.npy", at_default)
        state = load_checkpoint(ckpt, which="best")
        state["model"]["head.age_bounds"] = torch.tensor([22.0, 41.0])
        save_checkpoint(state, ckpt)
        export_checkpoint(model_files(ckpt), where / "model.onnx", check_images=8, measure_speed=False)

    where = made_once(tmp_path_factory, "exported-onnx", make)
    spec = json.loads((where / "model.onnx.json").read_text())
    return Exported(ckpt=where / "run" / "best.pth", model=where / "model.onnx", spec=spec,
                    at_default=np.load(where / "at_default.npy"))


def test_a_multi_head_ordinal_export_matches_pytorch_with_its_fitted_bounds(demo_data, exported):
    spec = exported.spec
    assert spec["parity"]["max_abs_diff"] < 1e-4 and spec["parity"]["argmax_agreement"] == 1.0
    assert spec["model"]["head"] == "multi" and spec["image_size"] == [64, 48] and len(spec["class_names"]) == 18
    _, reference = predict_with([exported.ckpt], device=torch.device("cpu"), eval_dir=demo_data / "eval",
                                num_workers=0)
    assert np.abs(reference - exported.at_default).max() > 1e-3  # the moved bounds change the prediction
    onnx = OnnxModel(exported.model, demo_data / "eval").probabilities(photos(demo_data), batch_size=5)
    assert np.abs(onnx - reference).max() < 1e-5  # the whole eval set, batches of another size, the graph's bounds


@pytest.mark.slow  # four exports
def test_a_kfold_run_is_one_averaging_graph_or_one_file_per_fold(demo_data, tmp_path):
    run = kfold_run(demo_data, tmp_path / "kfold")
    folds = [run / "folds" / f"fold_{k}" / "best.pth" for k in range(2)]
    per_fold = [predict_with([f], device=torch.device("cpu"), eval_dir=demo_data / "eval", num_workers=0)[1]
                for f in folds]
    assert np.abs(per_fold[0] - per_fold[1]).max() > 1e-3  # two different networks
    ((out, spec),) = export_checkpoint(model_files(run), tmp_path / "avg.onnx", check_images=4, measure_speed=False)
    assert spec["members"] == [str(f) for f in folds]
    averaged = OnnxModel(out, demo_data / "eval").probabilities(photos(demo_data))
    assert np.abs(averaged - (per_fold[0] + per_fold[1]) / 2).max() < 1e-5
    written = export_checkpoint(model_files(run), tmp_path / "m.onnx", per_fold=True, check_images=4,
                                measure_speed=False)
    assert [o.name for o, _ in written] == ["m.fold0.onnx", "m.fold1.onnx"]
    for (o, _), reference in zip(written, per_fold):
        assert np.abs(OnnxModel(o, demo_data / "eval").probabilities(photos(demo_data)) - reference).max() < 1e-5


@pytest.mark.slow  # an export
def test_a_disagreeing_export_writes_nothing(demo_data, tmp_path, monkeypatch, capsys):
    import export
    import predict.export

    ckpt = untrained_checkpoint(demo_data, tmp_path / "run" / "best.pth")
    real = predict.export.torch_probabilities
    monkeypatch.setattr(predict.export, "torch_probabilities", lambda *a: real(*a)[:, ::-1].copy())
    out = tmp_path / "out"
    out.mkdir()
    fails_in_one_line(export.main, ["--ckpt", str(ckpt), "--out", str(out / "model.onnx"), "--check-images", "4"],
                      capsys, "ONNX Runtime disagrees with PyTorch on 4 photos", "model not written")
    assert list(out.iterdir()) == []


def test_export_refuses_to_overwrite_its_checkpoint_and_needs_an_onnx_name(demo_data, tmp_path, capsys):
    import export

    ckpt = untrained_checkpoint(demo_data, tmp_path / "run" / "best.pth")
    with pytest.raises(SystemExit) as exit_info:
        export.main(["--ckpt", str(ckpt), "--out", str(ckpt.with_suffix(".pth.json"))])
    assert exit_info.value.code == 2 and "name the model file *.onnx" in capsys.readouterr().err
    fails_in_one_line(export.main, ["--ckpt", str(tmp_path / "run"), "--out", str(tmp_path / "run" / "best.onnx"),
                                    "--data", str(tmp_path / "nowhere")], capsys, "info.csv")


@pytest.mark.slow  # a subprocess
def test_inference_with_onnx_runs_without_torch_and_matches_the_checkpoint(demo_data, tmp_path):
    ckpt = untrained_checkpoint(demo_data, tmp_path / "run" / "best.pth")
    export_checkpoint(model_files(ckpt), tmp_path / "model.onnx", check_images=4, measure_speed=False)
    blocked = ("import sys; sys.modules['torch'] = None\nimport inference\n"
               f"inference.main(['--onnx', {str(tmp_path / 'model.onnx')!r}, '--data', {str(demo_data / 'eval')!r}, "
               f"'--out', {str(tmp_path / 'onnx.csv')!r}, '--tta', '--probs', {str(tmp_path / 'onnx_probs.csv')!r}])")
    done = subprocess.run([sys.executable, "-c", blocked], cwd=ROOT, capture_output=True, text=True,
                          timeout=scaled(120))
    assert done.returncode == 0, done.stderr[-2000:]
    done = subprocess.run([sys.executable, "inference.py", "--ckpt", str(ckpt), "--data", str(demo_data / "eval"),
                           "--out", str(tmp_path / "torch.csv"), "--tta", "--probs", str(tmp_path / "torch_probs.csv")],
                          cwd=ROOT, capture_output=True, text=True, timeout=scaled(120))
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "onnx.csv").read_text() == (tmp_path / "torch.csv").read_text()
    onnx_probs, torch_probs = (pd.read_csv(tmp_path / f"{k}_probs.csv", index_col="ImageID") for k in ("onnx", "torch"))
    assert onnx_probs.index.equals(torch_probs.index) and np.abs(onnx_probs - torch_probs).to_numpy().max() < 1e-4
    assert json.loads((tmp_path / "model.onnx.json").read_text())["format"] == 1


@pytest.mark.parametrize("change, message", [
    (lambda d: d["augment"].update(mean=[float("nan"), 0.4, 0.4]), "augment.mean.0: Input should be a finite"),
    (lambda d: d["augment"].update(std=[0, 1, 1]), "augment.std: Value error, must be three positive numbers"),
    (lambda d: d["augment"].update(image_size=[0, 48]), "augment.image_size: Value error"),
    (lambda d: d["augment"].update(image_size=[128, 96]), "the graph takes input ['batch', 3, 64, 48], but"),
    (lambda d: d.pop("augment"), "no augment section"),
    (lambda d: d.update(class_names=d["class_names"][:17]), "the graph gives 18 probabilities, but"),
    (lambda d: d.update(class_names=None), "class_names must be a list of class names, got None"),
    (lambda d: d.update(seed="x"), "seed must be an integer, got 'x'"),
    (lambda d: d.update(jpeg_draft="no"), "jpeg_draft must be true or false, got 'no'"),
    (lambda d: d["augment"].update(eval=[{"name": "Blurr", "args": {}}]), "edited.onnx.json: augment.eval[0].name"),
])
def test_a_hand_edited_preprocessing_file_is_one_line_naming_the_key(demo_data, exported, tmp_path, capsys, change,
                                                                     message):
    import shutil

    import inference

    model = exported.model
    copy = tmp_path / "edited.onnx"
    shutil.copy(model, copy)
    spec = json.loads(model.with_name(model.name + ".json").read_text())
    change(spec)
    (tmp_path / "edited.onnx.json").write_text(json.dumps(spec))
    out = tmp_path / "submission.csv"
    fails_in_one_line(inference.main, ["--onnx", str(copy), "--data", str(demo_data / "eval"), "--out", str(out)],
                      capsys, message)
    assert not out.exists()


@pytest.mark.parametrize("damage", ["truncated", "a photo"])
def test_a_damaged_or_foreign_model_file_is_one_line(demo_data, exported, tmp_path, capsys, damage):
    import shutil

    import inference

    model = exported.model
    bad = tmp_path / "bad.onnx"
    if damage == "truncated":
        bad.write_bytes(model.read_bytes()[:1000])
    else:
        shutil.copy(photos(demo_data)[0], bad)
    shutil.copy(model.with_name(model.name + ".json"), tmp_path / "bad.onnx.json")
    fails_in_one_line(inference.main, ["--onnx", str(bad), "--data", str(demo_data / "eval"), "--out",
                                       str(tmp_path / "s.csv")], capsys, str(bad), "not a loadable ONNX model")


def test_eval_photos_of_other_sizes_modes_and_bit_depths_predict_as_in_pytorch(demo_data, exported, tmp_path):
    from PIL import Image

    from predict.predictor import PredictOptions, ensemble_predict, resolve_models

    ckpt, model = exported.ckpt, exported.model
    source = Image.open(photos(demo_data)[0]).convert("RGB")
    (tmp_path / "images").mkdir()
    variants = {
        "small.jpg": source.resize((200, 100)),
        "gray.png": source.convert("L"),
        "alpha.png": source.convert("RGBA"),
        "palette.png": source.quantize(colors=64),
        "deep.png": Image.fromarray(np.asarray(source.convert("L"), dtype=np.uint16) * 257),  # 16-bit grey
    }
    for name, image in variants.items():
        image.save(tmp_path / "images" / name)
    pd.DataFrame({"ImageID": list(variants), "ans": 0}).to_csv(tmp_path / "info.csv", index=False)
    paths = [str(tmp_path / "images" / n) for n in variants]
    onnx = OnnxModel(model, tmp_path).probabilities(paths)
    options = PredictOptions(device=torch.device("cpu"), eval_dir=tmp_path, tta=False, batch_size=None, num_workers=0)
    _, reference = ensemble_predict(resolve_models([ckpt]), options)
    assert np.isfinite(onnx).all() and np.abs(onnx - reference).max() < 1e-5
