"""Write `submission.csv`: `python inference.py --ckpt RUN_OR_PTH [--ckpt ...] [--tta] [--weights W ...]`,
`python inference.py --ensemble ensemble.yaml [--tta]` or `python inference.py --onnx model.onnx [--tta]`."""
from __future__ import annotations

import argparse
import logging
import math
import re
from pathlib import Path
from typing import Any, Optional, Sequence

from utils.cli import as_script, cli_main
from utils.errors import UserError

LOG = logging.getLogger("inference")
PHOTOS_PER_PERSON = 7.0  # --group-size's default
EPILOG = "The network always comes from the checkpoint. Config keys: docs/config.md."


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Options and `key=value` overrides of --config, in any order."""
    parser = argparse.ArgumentParser(description=__doc__, epilog=EPILOG)
    models = parser.add_argument_group("models")
    models.add_argument("--ckpt", type=Path, action="append", metavar="RUN_OR_PTH",
                        help="checkpoint file, run directory (its best.pth) or K-fold run (every fold); "
                             "repeat to soft-vote")
    models.add_argument("--which", choices=("best", "swa", "soup"),
                        help="which weights of a run directory (and of each fold) to use: best.pth, swa.pth or "
                             "soup.pth (default: the one the run's config names with trainer.swa.use or "
                             "trainer.soup.use, else best.pth)")
    models.add_argument("--weights", type=float, nargs="+", metavar="W", help="soft-vote weight per --ckpt")
    models.add_argument("--ensemble", type=Path, metavar="YAML",
                        help="an ensemble fitted by ensemble.py (its runs, weights and class offsets)")
    models.add_argument("--onnx", type=Path, metavar="MODEL.onnx",
                        help="a model written by export.py, run with ONNX Runtime (PyTorch not needed)")
    models.add_argument("--tta", action="store_true", help="average with a horizontally flipped pass")
    models.add_argument("--group-people", nargs="?", const="auto", choices=("auto", "always"), default=None,
                        help="group the photos into people (no labels) and pool gender and age per group; "
                             "writes groups.csv beside the submission and measures it on validation first: "
                             "the submission is pooled only where that showed a gain beyond noise (`always`: "
                             "pooled whatever validation said)")
    models.add_argument("--group-size", type=float, default=None, metavar="N",
                        help="photos per person, a hint for the number of groups (default 7)")
    models.add_argument("--pseudo-labels", type=Path, metavar="CSV",
                        help="also write the confident predictions (ImageID,label,probability) here")
    models.add_argument("--min-prob", type=float, default=0.9, metavar="P",
                        help="confidence for --pseudo-labels (default 0.9)")
    models.add_argument("--probs", type=Path, metavar="CSV",
                        help="also write ImageID and the 18 class probabilities (prob_00..prob_17; pooled_00.. "
                             "with --group-people), rows in info.csv order; an --ensemble's are offset-adjusted")
    data = parser.add_argument_group("data and output")
    data.add_argument("--data", type=Path, metavar="EVAL_DIR", help="eval directory holding info.csv and images/")
    data.add_argument("--config", type=Path, metavar="YAML", help="config whose data.eval_dir / batch size to use")
    data.add_argument("--out", type=Path, metavar="CSV",
                      help="output CSV (default: submission.csv in the first run directory)")
    data.add_argument("--device", default="auto", metavar="DEVICE", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="overrides of --config")
    args = parser.parse_intermixed_args(argv)
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", args.device):
        parser.error(f"--device {args.device!r}: use auto, cpu, cuda or cuda:N")
    if sum(x is not None for x in (args.ckpt, args.ensemble, args.onnx)) != 1:
        parser.error("give one of --ckpt (one or more), --ensemble or --onnx")
    if args.which is not None and args.ckpt is None:
        parser.error("--which picks the weights of --ckpt runs (an ensemble file names its runs, an ONNX model "
                     "is one graph)")
    if args.weights is not None and args.ckpt is None:
        parser.error("--weights go with --ckpt (an ensemble file holds its own; an ONNX model is one graph)")
    if args.group_size is not None and args.group_people is None:
        parser.error("--group-size is a hint for --group-people; give both")
    args.group_size = PHOTOS_PER_PERSON if args.group_size is None else args.group_size
    if not math.isfinite(args.group_size) or args.group_size < 1:
        parser.error(f"--group-size {args.group_size:g}: must be a number of photos, at least 1")
    if args.onnx is not None and args.group_people:
        parser.error("--group-people needs the network's embeddings: use --ckpt or --ensemble")
    if args.onnx is not None and args.config is not None:
        parser.error("--onnx takes its preprocessing from the model's .json file: use --data for the photos")
    if not 0.0 < args.min_prob <= 1.0:
        parser.error(f"--min-prob {args.min_prob}: must be in (0, 1]")
    if args.overrides and args.config is None:
        parser.error(f"overrides {' '.join(args.overrides)} need --config (the network comes from the checkpoint)")
    return args


def default_output(first: Path) -> Path:
    """submission.csv in the run directory of the first checkpoint file (the run itself for folds and members)."""
    from utils.run_dir import RunDir

    return RunDir(first.parent).top.submission


def write_results(args: argparse.Namespace, table: Any, probs: Any, scores: Any, out: Path,
                  plain: Any = None) -> Path:
    """submission.csv (argmax of `scores`), with --pseudo-labels the confident rows, with --probs the
    probabilities (`plain`: the per-photo scores before --group-people pooled them)."""
    from predict.submission import scores_to_probabilities, write_probabilities, write_pseudo_labels, write_submission

    write_submission(table, scores, out)
    if args.probs is not None:
        def as_probs(values: Any) -> Any:
            return scores_to_probabilities(values) if getattr(args, "ensemble", None) is not None else values

        per_photo, pooled = (plain, scores) if plain is not None else (scores, None)
        write_probabilities(table, as_probs(per_photo), args.probs,
                            pooled=as_probs(pooled) if pooled is not None else None)
        LOG.info("wrote %s (%d rows of class probabilities)", args.probs, len(table))
    if args.pseudo_labels is not None:
        kept = write_pseudo_labels(table, probs, scores, args.pseudo_labels, min_prob=args.min_prob)
        LOG.info("wrote %s (%d of %d images at probability >= %.2f)", args.pseudo_labels, kept, len(table),
                 args.min_prob)
    LOG.info("wrote %s (%d rows)", out, len(table))
    return out


def predict_onnx(args: argparse.Namespace) -> Path:
    """--onnx: the exported graph and its preprocessing file, ONNX Runtime, no torch imported."""
    from data_loader.eval_table import read_eval_table
    from predict.onnx_model import OnnxModel, read_sidecar, sidecar_path
    from utils.outputs import check_outputs

    spec = read_sidecar(args.onnx)
    eval_dir = args.data or spec.get("eval_dir")
    if eval_dir is None:
        raise UserError("no eval directory: pass --data EVAL_DIR (a folder with info.csv and images/)")
    out = args.out or args.onnx.with_name("submission.csv")
    check_outputs({"--out": out, "--pseudo-labels": args.pseudo_labels, "--probs": args.probs},
                  {"--onnx": [args.onnx, sidecar_path(args.onnx)], "the eval table": [Path(eval_dir) / "info.csv"]})
    table = read_eval_table(Path(eval_dir))
    model = OnnxModel(args.onnx, Path(eval_dir))
    if args.tta:
        LOG.info("TTA on: every image is predicted as it is and flipped horizontally, the two averaged")
    LOG.info("predicting %d images with %s (ONNX Runtime)", len(table), args.onnx)
    probs = model.probabilities(table["path"].tolist(), tta=args.tta)
    return write_results(args, table, probs, probs, out)


def group_people(args: argparse.Namespace, table: Any, probs: Any, scores: Any, *, models: Any, options: Any,
                 groups_csv: Path) -> tuple[Any, Any, bool]:
    """--group-people: measured on the first checkpoint's validation people, then the eval photos grouped
    (that checkpoint's embeddings) and the prediction pooled per group; an ensemble's class offsets are
    added back to the pooled log-probabilities. Returns (probabilities, scores, whether they are pooled): the
    given ones where pooling stands down (`pooled_prediction.use_pooling`)."""
    import numpy as np

    from predict.fitted_ensemble import EPS, load_ensemble
    from predict.pooled_prediction import group_eval, log_validation, use_pooling, validation_report, write_groups

    report = validation_report(models.first_state, str(models.first), group_size=args.group_size,
                               **options.loader_kwargs())
    log_validation(report, models.first)
    pooled, groups = group_eval(table, probs, group_size=args.group_size)
    write_groups(table, groups, groups_csv)
    LOG.info("--group-people: %d eval photos in %d groups (%s)", len(table), len(set(groups)), groups_csv)
    if not use_pooling(report, args.group_people):
        return probs, scores, False
    if args.ensemble is None:
        return pooled, pooled, True
    offsets = np.asarray(load_ensemble(args.ensemble)["offsets"], dtype=np.float64)
    return pooled, np.log(pooled + EPS) + offsets, True


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> Path:
    args = parse_args(argv)
    if args.onnx is not None:
        return predict_onnx(args)
    from predict.fitted_ensemble import load_ensemble
    from predict.predictor import PredictOptions, ensemble_predict, fitted_ensemble_scores, resolve_models
    from utils.config import load_config
    from utils.device import resolve_device
    from utils.outputs import check_outputs

    eval_dir, batch_size, workers = args.data, None, None
    if args.config is not None:
        data = load_config(args.config, args.overrides, resolve=False).data
        eval_dir, batch_size, workers = eval_dir or data.eval_dir, data.batch_size, data.num_workers
    spec = load_ensemble(args.ensemble) if args.ensemble is not None else None
    models = resolve_models(spec["runs"] if spec is not None else args.ckpt, args.which)
    eval_dir = models.eval_dir(eval_dir)
    out = args.out or (args.ensemble.with_name("submission.csv") if args.ensemble is not None
                       else default_output(models.first))
    groups_csv = out.with_name("groups.csv") if args.group_people else None
    check_outputs({"--out": out, "--pseudo-labels": args.pseudo_labels, "--probs": args.probs,
                   "the groups file": groups_csv},
                  {"a checkpoint": models.files, "the eval table": [Path(eval_dir) / "info.csv"],
                   "--ensemble": [args.ensemble] if args.ensemble else [],
                   "--config": [args.config] if args.config else []})
    if args.tta:
        LOG.info("TTA on: every image is predicted as it is and flipped horizontally, the two averaged")
    options = PredictOptions(device=resolve_device(args.device), eval_dir=eval_dir, tta=args.tta,
                             batch_size=batch_size, num_workers=workers)
    if spec is not None:
        table, probs, scores = fitted_ensemble_scores(spec, models, options)
    else:
        table, probs = ensemble_predict(models, options, weights=args.weights)
        scores = probs
    plain = None
    if args.group_people:
        per_photo = scores
        probs, scores, pooled = group_people(args, table, probs, scores, models=models, options=options,
                                             groups_csv=groups_csv)
        plain = per_photo if pooled else None
    return write_results(args, table, probs, scores, out, plain=plain)


script = as_script(main)

if __name__ == "__main__":
    main()
