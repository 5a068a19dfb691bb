"""Predicting with an exported ONNX model, without PyTorch: the model file, its preprocessing file beside it
(`<model>.json`: image size, mean, std, transforms, face crop, class names) and ONNX Runtime."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
from pydantic import ValidationError

from data_loader.cache import draft_size
from data_loader.crop import build_crop
from data_loader.images import load_image
from data_loader.seeding import sample_seed, seed_pipeline
from data_loader.transforms import compose_steps
from utils.config import AugmentConfig
from utils.errors import ConfigError, UserError

LOG = logging.getLogger(__name__)
FORMAT = 1  # of the preprocessing file
INPUT, OUTPUT = "image", "probabilities"


def sidecar_path(model: Path) -> Path:
    """`model.onnx` -> `model.onnx.json`: the preprocessing that goes with the graph."""
    return Path(f"{model}.json")


def read_sidecar(model: Path, path: Optional[Path] = None) -> dict[str, Any]:
    """The preprocessing file of `model` (at `path`, default beside it); one line naming it when absent,
    unreadable or of another format."""
    path = path or sidecar_path(model)
    try:
        spec = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not found (export.py writes it beside {Path(model).name})") from None
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: unreadable ({err})") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise UserError(f"{path}: not a preprocessing file of format {FORMAT} (export the model again)")
    check_fields(spec, path)
    return spec


def check_fields(spec: dict[str, Any], path: Path) -> None:
    """The preprocessing file's own fields have their types (a hand-edited file is one line naming the key)."""
    names = spec.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise UserError(f"{path}: class_names must be a list of class names, got {names!r:.60}")
    for key, kind in (("seed", int), ("jpeg_draft", bool)):
        if key in spec and (not isinstance(spec[key], kind) or (kind is int and isinstance(spec[key], bool))):
            raise UserError(f"{path}: {key} must be {'an integer' if kind is int else 'true or false'}, "
                            f"got {spec[key]!r:.60}")


def augment_section(spec: dict[str, Any], path: Path) -> AugmentConfig:
    """The preprocessing file's `augment` section, validated as a config's; one line naming the key at fault."""
    try:
        return AugmentConfig.model_validate(spec["augment"])
    except KeyError:
        raise UserError(f"{path}: no augment section (export the model again)") from None
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: augment.{where}: {first['msg']}") from None


def check_graph(session: Any, spec: dict[str, Any], image_size: Sequence[int], path: Path, sidecar: Path) -> None:
    """The graph takes what the preprocessing makes (3 x height x width) and gives one probability per class
    name; else one line, before any photo is read."""
    height, width = image_size
    shape = list(session.get_inputs()[0].shape)
    fixed = [d if isinstance(d, int) else None for d in shape[1:]]
    if len(shape) != 4 or any(want is not None and want != need for want, need in zip(fixed, (3, height, width))):
        raise UserError(f"{path}: the graph takes input {shape}, but {sidecar} makes photos of 3 x {height} x "
                        f"{width} (augment.image_size); the two files are from different exports")
    classes = session.get_outputs()[0].shape[-1]
    if isinstance(classes, int) and classes != len(spec["class_names"]):
        raise UserError(f"{path}: the graph gives {classes} probabilities, but {sidecar} names "
                        f"{len(spec['class_names'])} classes; the two files are from different exports")


class Preprocess:
    """A photo path -> the CHW float32 array the network takes, as the run's evaluation pipeline makes it
    (JPEG draft decode, face crop, eval transforms, resize, normalisation), with numpy alone."""

    def __init__(self, spec: dict[str, Any], eval_dir: Optional[Path], path: Path = Path("preprocessing file")
                 ) -> None:
        aug = augment_section(spec, path)
        self.image_size = aug.image_size
        draft = bool(spec.get("jpeg_draft", False))
        try:
            self.transform = compose_steps(aug.eval, aug, "augment.eval", tensors=False)
        except ConfigError as err:  # an unknown or misused step: the file it is in, then the key
            raise ConfigError(f"{path}: {err}") from None
        self.draft_size = draft_size(aug.image_size, draft)
        self.crop = build_crop(aug, [eval_dir], draft=draft)
        self.seed = int(spec.get("seed", 0))

    def __call__(self, path: str, index: int) -> np.ndarray:
        image = self.crop(path) if self.crop is not None else load_image(path, self.draft_size)
        seed_pipeline(self.transform, sample_seed(self.seed, 0, index))
        return self.transform(image=image)["image"]


class OnnxModel:
    """An exported model and its preprocessing; `probabilities(paths)` in path order."""

    def __init__(self, path: Path, eval_dir: Optional[Path] = None, threads: Optional[int] = None,
                 spec_path: Optional[Path] = None) -> None:
        self.path, sidecar = Path(path), spec_path or sidecar_path(Path(path))
        self.spec = read_sidecar(self.path, sidecar)
        self.session = make_session(self.path, threads)
        self.preprocess = Preprocess(self.spec, eval_dir, sidecar)
        check_graph(self.session, self.spec, self.preprocess.image_size, self.path, sidecar)
        self.class_names: list[str] = list(self.spec["class_names"])

    def run(self, batch: np.ndarray, tta: bool = False) -> np.ndarray:
        """Probabilities of a (N, 3, H, W) float32 batch; `tta` averages with the horizontal flip."""
        probs = self.session.run([OUTPUT], {INPUT: batch})[0]
        if tta:
            probs = (probs + self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(batch[..., ::-1])})[0]) / 2
        return probs

    def probabilities(self, paths: Sequence[str], *, batch_size: int = 32, tta: bool = False,
                      progress: Optional[Callable[[int], None]] = None) -> np.ndarray:
        """(len(paths), classes) probabilities, `batch_size` photos at a time."""
        out = []
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            out.append(self.run(np.stack([self.preprocess(p, start + i) for i, p in enumerate(chunk)]), tta=tta))
            if progress is not None:
                progress(len(chunk))
        return np.concatenate(out) if out else np.zeros((0, len(self.class_names)), dtype=np.float32)


def make_session(path: Path, threads: Optional[int] = None) -> Any:
    """An ONNX Runtime CPU session of `path`; one line when onnxruntime is missing or the file is no model."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("--onnx needs onnxruntime (pip install onnxruntime, or pip install -e .[onnx])") from None
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own classes for a bad file
        raise UserError(f"{path}: not a loadable ONNX model ({str(err).splitlines()[0][:200]})") from None
