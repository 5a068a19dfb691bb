"""The loop a team writes by hand, trained to a score: the yardstick for the framework's time to a macro-F1.

`python -m tools.bare_loop --train-dir D/train --eval-dir D/eval --out DIR [--epochs 14] [--backbone resnet10t]
[--image-size 128 96] [--batch-size 32] [--lr 3e-3] [--seed 42]`

Plain PyTorch and timm, nothing of the framework's training path: every training person (no validation split),
each photo decoded once and resized whole (bilinear) into memory, a random horizontal flip, ImageNet
normalisation, a timm backbone with an 18-way linear head, AdamW at a constant rate, cross-entropy, fp32, the
last epoch's weights. Writes DIR/submission.csv for the eval photos and DIR/timing.json (seconds: decoding,
training, prediction, total). Score it with `tools.score DIR/submission.csv TRUTH --predictions P.csv` and pair it
with a run through `tools.compare`. Only the labels come from the framework (`data_loader.people`), so both
sides learn the same classes.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image

from data_loader.eval_table import read_eval_table
from data_loader.people import list_train_images
from utils.cli import as_script, cli_main
from utils.config import IMAGENET_MEAN, IMAGENET_STD
from utils.io import atomic_write_text
from utils.labels import NUM_CLASSES
from utils.outputs import check_outputs


def decode_all(paths: Sequence[str], size: tuple[int, int]) -> torch.Tensor:
    """Photos as one uint8 tensor (N, 3, H, W), each resized whole to `size` (height, width)."""
    height, width = size
    arrays = [np.asarray(Image.open(p).convert("RGB").resize((width, height), Image.BILINEAR)) for p in paths]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def normalise(images: torch.Tensor) -> torch.Tensor:
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images.float() / 255 - mean) / std


def train(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, *, epochs: int, batch_size: int,
          lr: float) -> None:
    """Shuffled batches (the last short one dropped), a random flip per photo, AdamW, cross-entropy."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(labels))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            batch = order[start:start + batch_size]
            x = normalise(images[batch])
            flip = torch.rand(len(batch)) < 0.5
            x[flip] = x[flip].flip(-1)
            loss = torch.nn.functional.cross_entropy(model(x), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 128) -> np.ndarray:
    model.eval()
    return torch.cat([model(normalise(images[i:i + batch_size])).argmax(1)
                      for i in range(0, len(images), batch_size)]).numpy()


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-dir", type=Path, required=True)
    parser.add_argument("--eval-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for submission.csv and timing.json")
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--backbone", default="resnet10t")
    parser.add_argument("--image-size", type=int, nargs=2, default=(128, 96), metavar=("H", "W"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> dict[str, float]:
    args = parse_args(argv)
    import timm

    args.out.mkdir(parents=True, exist_ok=True)
    submission, timing_file = args.out / "submission.csv", args.out / "timing.json"
    check_outputs({"--out": submission}, {"--train-dir": [args.train_dir], "--eval-dir": [args.eval_dir]})
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    table = list_train_images(args.train_dir)
    info = read_eval_table(args.eval_dir)  # info.csv's rows with the path of each photo, checked
    size = tuple(args.image_size)
    images, labels = decode_all(table["path"].tolist(), size), torch.tensor(table["label"].to_numpy(), dtype=torch.long)
    eval_images = decode_all(info["path"].tolist(), size)
    decoded = time.perf_counter()
    model = timm.create_model(args.backbone, pretrained=False, num_classes=NUM_CLASSES)
    train(model, images, labels, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr)
    trained = time.perf_counter()
    answers = predict(model, eval_images)
    done = time.perf_counter()
    atomic_write_text(submission, pd.DataFrame({"ImageID": info["ImageID"], "ans": answers}).to_csv(index=False))
    timing = {"decode_s": decoded - start, "train_s": trained - decoded, "predict_s": done - trained,
              "total_s": done - start, "train_images": len(labels), "epochs": args.epochs}
    atomic_write_text(timing_file, json.dumps(timing, indent=2) + "\n")
    print(f"wrote {submission} ({len(answers)} photos); {timing['total_s']:.0f} s in all "
          f"({timing['train_s']:.0f} s training {len(labels)} photos x {args.epochs} epochs)")
    return timing


script = as_script(main)

if __name__ == "__main__":
    main()
