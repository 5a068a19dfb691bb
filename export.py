"""Export a model to ONNX: `python export.py --ckpt RUN_OR_PTH --out model.onnx [--per-fold] [--data EVAL_DIR]`.

Writes the graph (dynamic batch, probabilities out) and `model.onnx.json` (image size, mean, std,
transforms, face crop, class names) after checking ONNX Runtime against PyTorch on real photos; predict
with `python inference.py --onnx model.onnx` (no PyTorch needed there)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Optional, Sequence

from utils.cli import as_script, cli_main

LOG = logging.getLogger("export")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, required=True, metavar="RUN_OR_PTH",
                        help="checkpoint file, run directory (its best.pth) or K-fold run (its folds)")
    parser.add_argument("--out", type=Path, required=True, metavar="MODEL.onnx")
    parser.add_argument("--per-fold", action="store_true",
                        help="a K-fold run as one file per fold (default: one graph averaging the folds)")
    parser.add_argument("--data", type=Path, metavar="EVAL_DIR",
                        help="photos to check the export on (default: the run's data.eval_dir)")
    parser.add_argument("--check-images", type=int, default=64, metavar="N", help="photos to check on (default 64)")
    args = parser.parse_intermixed_args(argv)
    if args.out.suffix != ".onnx":
        parser.error(f"--out {args.out}: name the model file *.onnx")
    if args.check_images < 1:
        parser.error("--check-images must be at least 1")
    return args


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> list[Path]:
    args = parse_args(argv)
    from predict.export import export_checkpoint
    from predict.onnx_model import sidecar_path
    from utils.outputs import check_outputs
    from utils.run import model_files

    members = model_files(args.ckpt)
    check_outputs({"--out": args.out, "--out's preprocessing file": sidecar_path(args.out)},
                  {"a checkpoint": members, "--data": [args.data / "info.csv"] if args.data else []})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    written = export_checkpoint(members, args.out, per_fold=args.per_fold, data=args.data,
                                check_images=args.check_images)
    for out, spec in written:
        parity, speed = spec["parity"], spec["cpu_speed"]
        LOG.info("wrote %s (+ %s): %d member(s); on %d photos ONNX Runtime vs PyTorch: max probability difference "
                 "%.2e, argmax agreement %.4f", out, sidecar_path(out).name, len(spec["members"]), parity["images"],
                 parity["max_abs_diff"], parity["argmax_agreement"])
        LOG.info("CPU speed, batch %d, %d threads: ONNX Runtime %.0f img/s, PyTorch %.0f img/s", speed["batch"],
                 speed["threads"], speed["onnxruntime_img_s"], speed["pytorch_img_s"])
    return [out for out, _ in written]


script = as_script(main)

if __name__ == "__main__":
    main()
