"""Export checkpoints to ONNX: one graph (a K-fold run's folds averaged inside it, or one file per fold),
its preprocessing beside it, written only after ONNX Runtime agrees with PyTorch on real photos."""
from __future__ import annotations

import contextlib
import io
import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

from data_loader.eval_table import read_eval_table
from data_loader.pipeline import build_image_pipeline
from predict.onnx_model import FORMAT, INPUT, OUTPUT, OnnxModel, sidecar_path
from predict.predictor import model_from_checkpoint
from trainer.checkpoint import load_checkpoint
from utils.config import Config
from utils.errors import UserError
from utils.io import atomic_write_text
from utils.labels import class_names
from utils.signals import signals_deferred

LOG = logging.getLogger(__name__)
OPSET = 18
ATOL = 1e-4  # largest probability difference accepted between ONNX Runtime and PyTorch (fp32, CPU)


class MeanProbabilities(nn.Module):
    """Softmax probabilities of one network, or the mean over several (a K-fold run's folds)."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(images).softmax(dim=1) for m in self.members]).mean(dim=0)


def preprocessing(config: Config) -> dict[str, Any]:
    """What a photo goes through before the network under `config` (the preprocessing file's core)."""
    return {"augment": config.augment.model_dump(mode="json"), "jpeg_draft": config.data.jpeg_draft,
            "seed": config.seed}


def load_members(paths: Sequence[Path]) -> tuple[list[nn.Module], Config]:
    """The networks of `paths` (eval mode, CPU) and their config; members whose preprocessing differs
    cannot share one graph."""
    models, configs = [], []
    for path in paths:
        model, config = model_from_checkpoint(load_checkpoint(str(path)), str(path))
        models.append(model.eval().cpu())
        configs.append(config)
    first = preprocessing(configs[0])
    for path, config in zip(paths[1:], configs[1:]):
        if preprocessing(config) != first:
            raise UserError(f"{path}: preprocessed differently from {paths[0]} (augment / data.jpeg_draft / seed); "
                            "export them separately")
    return models, configs[0]


def export_graph(module: nn.Module, example: torch.Tensor, out: Path) -> None:
    """`module` as one self-contained ONNX file at `out` (weights inside) with a dynamic batch dimension
    (torch.onnx's exporter; its progress lines and graph-pass logs are kept out of the run's log)."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    quiet = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir", "torch.onnx")]
    levels = [log.level for log in quiet]
    try:
        for log in quiet:
            log.setLevel(logging.WARNING)
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), str(out), input_names=[INPUT], output_names=[OUTPUT],
                              dynamic_shapes=({0: batch},), opset_version=OPSET, dynamo=True, external_data=False,
                              verbose=False)
    finally:
        for log, level in zip(quiet, levels):
            log.setLevel(level)


def parity_photos(config: Config, data: Optional[Path], n: int) -> tuple[Path, list[str]]:
    """The first `n` photos of the eval directory (`data`, else the run's `data.eval_dir`)."""
    eval_dir = data or config.data.eval_dir
    if eval_dir is None:
        raise UserError("no photos to check the export on: pass --data EVAL_DIR (a folder with info.csv and images/)")
    table = read_eval_table(Path(eval_dir))
    return Path(eval_dir), table["path"].tolist()[:n]


def torch_probabilities(module: nn.Module, config: Config, eval_dir: Path, paths: Sequence[str]) -> np.ndarray:
    """PyTorch's probabilities of `paths` through the run's own evaluation pipeline."""
    dataset = build_image_pipeline(config, [eval_dir]).eval_dataset(list(paths), seed=config.seed)
    with torch.no_grad():
        return module(torch.stack([dataset[i][0] for i in range(len(dataset))])).numpy()


def check_parity(reference: np.ndarray, onnx: np.ndarray, atol: float) -> dict[str, float]:
    """Max probability difference and argmax agreement; a `UserError` when they disagree."""
    figures = {"images": int(len(reference)), "max_abs_diff": float(np.abs(reference - onnx).max()),
               "argmax_agreement": float((reference.argmax(1) == onnx.argmax(1)).mean())}
    if figures["max_abs_diff"] > atol or figures["argmax_agreement"] < 1.0:
        raise UserError(f"ONNX Runtime disagrees with PyTorch on {figures['images']} photos (max probability "
                        f"difference {figures['max_abs_diff']:.2e} > {atol:g}, or argmax agreement "
                        f"{figures['argmax_agreement']:.4f} < 1): model not written")
    return figures


def speed(module: nn.Module, onnx: OnnxModel, batch: np.ndarray, repeats: int = 3) -> dict[str, float]:
    """Images per second of PyTorch (eager, fp32) and ONNX Runtime on one batch, best of `repeats`, CPU."""
    def rate(run) -> float:
        run()
        best = min(timed(run) for _ in range(repeats))
        return len(batch) / best
    tensor = torch.from_numpy(batch)
    with torch.no_grad():
        return {"pytorch_img_s": rate(lambda: module(tensor)), "onnxruntime_img_s": rate(lambda: onnx.run(batch)),
                "batch": len(batch), "threads": torch.get_num_threads()}


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def export_model(paths: Sequence[Path], out: Path, *, data: Optional[Path] = None, check_images: int = 64,
                 atol: float = ATOL, measure_speed: bool = True) -> dict[str, Any]:
    """Export the checkpoints `paths` as one graph averaging their probabilities, check it against PyTorch on
    `check_images` photos (and, with `measure_speed`, time both on the CPU), then write `out` and its
    preprocessing file (temp files renamed; nothing is left when the check fails). Returns the preprocessing
    file's content."""
    models, config = load_members(paths)
    module = MeanProbabilities(models).eval()
    eval_dir, photos = parity_photos(config, data, check_images)
    reference = torch_probabilities(module, config, eval_dir, photos)
    spec = {"format": FORMAT, "input": INPUT, "output": OUTPUT, "layout": "NCHW float32, RGB",
            "image_size": list(config.augment.image_size), "mean": list(config.augment.mean),
            "std": list(config.augment.std), "face_crop": config.augment.face_crop is not None,
            "center_crop": list(config.augment.center_crop) if config.augment.center_crop is not None else None,
            **preprocessing(config), "class_names": class_names(), "members": [str(p) for p in paths],
            "model": {"backbone": config.model.backbone, "head": config.model.head}, "opset": OPSET,
            "eval_dir": str(config.data.eval_dir) if config.data.eval_dir is not None else None,
            "torch": torch.__version__}
    tmp_model, tmp_spec = Path(f"{out}.tmp"), Path(f"{sidecar_path(out)}.tmp")
    try:
        export_graph(module, torch.from_numpy(np.zeros((2, 3, *config.augment.image_size), np.float32)), tmp_model)
        atomic_write_text(tmp_spec, json.dumps(spec, indent=2))
        onnx = OnnxModel(tmp_model, eval_dir, spec_path=tmp_spec)
        spec["parity"] = check_parity(reference, onnx.probabilities(photos), atol)
        if measure_speed:
            batch = np.stack([onnx.preprocess(p, i) for i, p in enumerate(photos[:32])])
            spec["cpu_speed"] = speed(module, onnx, batch)
        atomic_write_text(tmp_spec, json.dumps(spec, indent=2))
        with signals_deferred():  # the model and its sidecar replace the old pair together, or not at all
            tmp_model.replace(out)
            tmp_spec.replace(sidecar_path(out))
    finally:
        tmp_model.unlink(missing_ok=True)
        tmp_spec.unlink(missing_ok=True)
    return spec


def export_checkpoint(members: Sequence[Path], out: Path, *, per_fold: bool = False, **kwargs: Any
                      ) -> list[tuple[Path, dict]]:
    """The checkpoint files `members` (`utils.run.model_files`) to `out`: one graph, or with `per_fold` one
    file per fold (`<out stem>.fold<k>.onnx`)."""
    if not per_fold or len(members) == 1:
        return [(out, export_model(members, out, **kwargs))]
    outs = [out.with_name(f"{out.stem}.fold{k}{out.suffix}") for k in range(len(members))]
    return [(o, export_model([m], o, **kwargs)) for o, m in zip(outs, members)]
