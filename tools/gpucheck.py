"""GPU acceptance: `python -m tools.gpucheck [--config CONFIG] [--out FILE.json] [--steps N]`.

On a CUDA GPU, short runs of the recipe's model (default configs/swin_b.yaml: Swin-B with the shallow
head, batch 64, the recipe's augmentations) on synthetic data:
- precision: train steps in fp32, fp16 and (where native) bf16 with finite losses; eval probabilities of
  each AMP mode against fp32 on the same weights (max abs diff, argmax agreement, and how close to a tie
  fp32's top two were in the rows whose argmax changed);
- layouts: train-step img/s with channels_last and torch.compile off/on;
- loop: the full train loop against a bare PyTorch + timm loop of the same model (median ratio of
  interleaved epoch pairs, with its range);
- input pipeline img/s (configured workers and cache) against the GPU step rate (is the GPU starved?);
- peak GPU memory; GPU utilisation sampled during the framework's epochs; one epoch section by section
  (training, the wait for the loader within it, validation, logging, checkpoints: `benchmark.epoch_breakdown`);
  a 1-process NCCL DDP run; a save -> --resume round trip.
Prints the elapsed time of each part as it ends, then a table, and writes JSON. Every part is bounded
(steps, people, one compiled layout, CLI runs with a time limit) so the whole check fits a short GPU
slot (273 s on an H200 with 240 people and two loop pairs; about 40 s more with five; the epoch breakdown,
two short epochs, is newer and not yet timed on a GPU); `--quick` runs only precision, the loop ratio, the
epoch breakdown and pipeline vs step (42 s before the breakdown). Without CUDA it prints one line and exits 0.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np
import torch

from utils.cli import as_script, cli_main

ROOT = Path(__file__).resolve().parents[1]
LOOP_PAIRS, LOOP_PAIRS_QUICK = 5, 3  # bare/framework epoch pairs; on short epochs one pair's ratio swings ±20 %
TARGETS = {"loop_ratio": 0.95, "argmax_agreement": 0.99, "flip_max_gap": 0.01, "pipeline_over_step": 1.5}
CLI_TIMEOUT = 240  # seconds for each training command of the check (DDP, train, resume)
MAX_STEPS, MAX_PEOPLE = 100, 400


class PartTimer:
    """Times the parts of the check: `with timer("precision"):` prints and records its seconds."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.start = time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, part: str) -> Iterator[None]:
        begin = time.perf_counter()
        yield
        self.seconds[part] = round(time.perf_counter() - begin, 1)
        print(f"gpucheck: {part} done in {self.seconds[part]:.1f} s ({time.perf_counter() - self.start:.0f} s in all)",
              flush=True)


def eval_probs(model: torch.nn.Module, batches: Sequence[torch.Tensor], device: torch.device,
               dtype: Optional[torch.dtype]) -> np.ndarray:
    """Softmax probabilities of `batches` under autocast `dtype` (None: full precision)."""
    model.eval()
    out = []
    with torch.no_grad():
        for images in batches:
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                out.append(model(images.to(device)).float().softmax(dim=1).cpu())
    return torch.cat(out).numpy()


def agreement(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """Max absolute probability difference, share of equal argmax predictions, and the largest fp32 top-2
    probability gap among the rows whose argmax changed. An untrained model's probabilities are near-uniform,
    so rounding flips rows no trained model leaves that close; `flip_max_gap` says how close they were."""
    top2 = np.sort(reference, axis=1)[:, -2:]
    flipped = reference.argmax(1) != other.argmax(1)
    gaps = (top2[:, 1] - top2[:, 0])[flipped]
    return {"max_abs_diff": float(np.abs(reference - other).max()), "argmax_agreement": float(1 - flipped.mean()),
            "flip_max_gap": float(gaps.max()) if gaps.size else 0.0}


def train_losses(trainer: Any, batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> list[float]:
    """Losses of `Trainer.train_step` over `batches` (already on the device)."""
    trainer.freeze.set_train_mode(trainer.model)
    losses = []
    for i, (images, targets) in enumerate(batches):
        out = trainer.train_step(images, targets, i)
        losses.append(float(out[0].detach()) if out is not None else float("nan"))
    return losses


def precision_check(make_trainer: Callable[[str], Any], dtypes: dict[str, torch.dtype], steps: int) -> dict:
    """Train `steps` steps per mode (finite losses?), then compare each AMP mode's eval probabilities
    with fp32 on the fp32 run's weights."""
    results: dict[str, Any] = {}
    reference = make_trainer("none")
    batches = [reference.to_device(x, y) for x, y, _ in itertools.islice(reference.train_loader, steps)]
    results["fp32"] = {"losses_finite": bool(np.isfinite(train_losses(reference, batches)).all())}
    val = [x for x, _, _ in itertools.islice(reference.val_loader or reference.train_loader, 4)]
    fp32 = eval_probs(reference.model, val, reference.device, None)
    for name, dtype in dtypes.items():
        trainer = make_trainer(name)
        finite = bool(np.isfinite(train_losses(trainer, batches)).all())
        results[name] = {"losses_finite": finite, **agreement(fp32, eval_probs(reference.model, val,
                                                                                reference.device, dtype))}
    return results


def run_cli(args: Sequence[str], timeout: int = CLI_TIMEOUT) -> dict[str, Any]:
    """A command of this project; its exit code and last output line (rc 124 past `timeout` seconds)."""
    start = time.perf_counter()
    try:
        proc = subprocess.run([*args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"rc": 124, "seconds": float(timeout), "last_line": f"stopped after {timeout} s"}
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
    return {"rc": proc.returncode, "seconds": round(time.perf_counter() - start, 1), "last_line": tail[0][-200:]}


def check(config_path: Path, steps: int, people: int, overrides: Sequence[str] = (),
          device: str = "cuda", quick: bool = False) -> dict[str, Any]:
    """Every measurement on the CUDA device (see the module docstring); `quick`: precision, loop ratio
    and pipeline vs step only. `device="cpu"` runs the same check on the CPU, as a smoke test of the
    check itself (AMP modes then compare CPU autocast)."""
    from tools import benchmark
    from tools.synthetic import generate
    from trainer.build import build_trainer
    from utils.config import load_config
    from utils.device import NATIVE_BF16, check_cuda_arch, nvidia_driver_version

    device = torch.device(device)
    cuda = device.type == "cuda"
    check_cuda_arch(device)
    capability = torch.cuda.get_device_capability(device) if cuda else (0, 0)
    results: dict[str, Any] = {
        "gpu": torch.cuda.get_device_name(device) if cuda else "cpu", "capability": ".".join(map(str, capability)),
        "torch": torch.__version__, "cuda": torch.version.cuda, "driver": nvidia_driver_version(),
        "config": str(config_path), "steps": steps, "quick": quick,
    }
    timer = PartTimer()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        with timer("synthetic data"):
            generate(data, people, 8, seed=1, workers=min(os.cpu_count() or 1, 8))
        base = [f"data.train_dir={data / 'train'}", f"data.eval_dir={data / 'eval'}", "model.pretrained=false",
                "model.pretrained_path=null", "data.batch_size=64", f"save_dir={Path(tmp) / 'saved'}",
                "trainer.epochs=1", "trainer.freeze=null", "data.group_duplicates=false", "name=gpucheck",
                "data.relabel=null", f"trainer.device={device.type}", *overrides]

        def make(amp: str = "auto", *extra: str) -> Any:
            return build_trainer(load_config(config_path, [*base, f"trainer.amp={amp}", *extra]))

        dtypes = {"fp16": torch.float16, **({"bf16": torch.bfloat16} if capability >= NATIVE_BF16 else {})}
        if not cuda:
            dtypes = {"bf16": torch.bfloat16}  # what CPU autocast runs
        with timer("precision"):
            results["precision"] = precision_check(make, dtypes, steps)
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        layouts = {}
        # eager in both layouts, compiled once (channels_last, as the recipes train); inductor on a CPU
        # takes minutes of compiling, so the CPU smoke test leaves it out
        kinds = [(False, False), (True, False)] + ([(True, True)] if cuda else [])
        if quick:
            kinds = []
        for channels_last, compiled in kinds:
            with timer(f"train step channels_last={channels_last} compile={compiled}"):
                trainer = make("auto", f"trainer.channels_last={str(channels_last).lower()}",
                               f"trainer.compile={str(compiled).lower()}")
                layouts[f"channels_last={channels_last} compile={compiled}"] = benchmark.step_rate(trainer, steps)
        results["step_img_s"] = layouts
        trainer = make("auto")
        config = load_config(config_path, [*base, "trainer.amp=auto"])
        loop, bare, utilisation = [], [], []
        with timer("full loop vs bare loop"):
            for _ in range(LOOP_PAIRS_QUICK if quick else LOOP_PAIRS):  # interleaved: drifts hit both alike
                bare.append(benchmark.reference_rate(config, trainer))
                with benchmark.UtilisationSampler(device) as busy:
                    loop.append(benchmark.framework_rate(trainer))
                utilisation.append(busy.mean)
        ratios = sorted(a / b for a, b in zip(loop, bare))
        busy = [u for u in utilisation if u is not None]
        results["gpu_util_percent"] = statistics.median(busy) if busy else None  # during the framework's epochs
        with timer("epoch breakdown"):
            results["epoch_breakdown"] = benchmark.epoch_breakdown(config)
        with timer("input pipeline vs GPU step"):
            step = benchmark.step_rate(trainer, steps)
            pipeline = benchmark.pipeline_rate(trainer, steps)
        results.update({
            "loop_img_s": statistics.median(loop), "bare_img_s": statistics.median(bare),
            "loop_ratio": statistics.median(ratios), "loop_ratio_range": [ratios[0], ratios[-1]],
            "loop_pairs": len(ratios),
            "pipeline_img_s": pipeline, "gpu_step_img_s": step, "pipeline_over_step": pipeline / step,
            "peak_gpu_mb": torch.cuda.max_memory_allocated(device) / 2**20 if cuda else 0.0,
        })
        if not quick:
            cli = [f"{k}" for k in base] + ["trainer.amp=auto", "data.batch_size=32"]
            with timer("DDP, 1 process"):
                results["ddp_nccl_1proc"] = run_cli([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                     "--nproc_per_node=1", "train.py", "--config", str(config_path),
                                                     *cli])
            with timer("save -> resume"):
                first = run_cli([sys.executable, "train.py", "--config", str(config_path), *cli])
                runs = sorted((Path(tmp) / "saved" / "gpucheck").glob("2*"))
                resumed = (run_cli([sys.executable, "train.py", "--resume", str(runs[-1]), "trainer.epochs=2"])
                           if runs else {"rc": 1, "seconds": 0.0, "last_line": "no run directory"})
                results["save_resume"] = {"train": first, "resume": resumed}
    results["part_seconds"] = timer.seconds
    results["total_seconds"] = round(time.perf_counter() - timer.start, 1)
    return results


def table(results: dict[str, Any]) -> str:
    """The figures as aligned text lines, with the targets."""
    from tools.benchmark import describe_breakdown

    busy = results["gpu_util_percent"]
    lines = [f"GPU {results['gpu']} (sm {results['capability']}), torch {results['torch']}, CUDA {results['cuda']}, "
             f"driver {results['driver']}"]
    for mode, row in results["precision"].items():
        extra = (f"  max|dp| {row['max_abs_diff']:.2e}  argmax agreement {row['argmax_agreement']:.4f} (target >= "
                 f"{TARGETS['argmax_agreement']}), flipped rows' fp32 top-2 gap <= {row['flip_max_gap']:.1e} "
                 f"(target <= {TARGETS['flip_max_gap']})" if "argmax_agreement" in row else "")
        lines.append(f"  {mode:<5} losses finite: {row['losses_finite']}{extra}")
    for name, rate in results["step_img_s"].items():
        lines.append(f"  train step {name:<36} {rate:8.1f} img/s")
    lines += [
        f"  full loop {results['loop_img_s']:.1f} img/s / bare loop {results['bare_img_s']:.1f} = "
        f"{results['loop_ratio']:.3f} (median of {results['loop_pairs']} pairs, range "
        f"{results['loop_ratio_range'][0]:.3f}-{results['loop_ratio_range'][1]:.3f}; target >= "
        f"{TARGETS['loop_ratio']})",
        f"  input pipeline {results['pipeline_img_s']:.1f} img/s / GPU step {results['gpu_step_img_s']:.1f} = "
        f"{results['pipeline_over_step']:.2f} (target >= {TARGETS['pipeline_over_step']})",
        f"  peak GPU memory {results['peak_gpu_mb']:.0f} MB, GPU busy during the loop's epochs "
        f"{'unmeasured (no NVML)' if busy is None else f'{busy:.0f} %'}",
        f"  one epoch, section by section: {describe_breakdown(results['epoch_breakdown'])}",
    ]
    if "save_resume" in results:
        lines.append(f"  DDP NCCL 1 process: rc {results['ddp_nccl_1proc']['rc']}; save -> resume: rc "
                     f"{results['save_resume']['train']['rc']} -> {results['save_resume']['resume']['rc']}")
    parts = ", ".join(f"{part} {sec:.0f} s" for part, sec in results["part_seconds"].items())
    lines.append(f"  time: {results['total_seconds']:.0f} s in all ({parts})")
    return "\n".join(lines)


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> Optional[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "swin_b.yaml", metavar="YAML")
    parser.add_argument("--out", type=Path, metavar="FILE.json", help="also write the figures as JSON")
    parser.add_argument("--steps", type=int, default=20, metavar="N", help="train steps per measurement")
    parser.add_argument("--people", type=int, default=240, metavar="N", help="synthetic training people")
    parser.add_argument("--quick", action="store_true",
                        help="precision agreement, loop ratio and pipeline vs step only (about 2 minutes)")
    parser.add_argument("--cpu-smoke", action="store_true", help="run the whole check on the CPU (tests the check)")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="overrides of --config")
    args = parser.parse_intermixed_args(argv)
    if not (1 <= args.steps <= MAX_STEPS and 8 <= args.people <= MAX_PEOPLE):
        parser.error(f"--steps must be 1..{MAX_STEPS} and --people 8..{MAX_PEOPLE} (the check must fit a short slot)")
    if args.cpu_smoke:
        results = check(args.config, args.steps, args.people, args.overrides, device="cpu", quick=args.quick)
        print(table(results))
        return results
    if not torch.cuda.is_available():
        print(f"gpucheck: no CUDA GPU usable here (torch {torch.__version__}, CUDA {torch.version.cuda}); "
              "nothing to check")
        return None
    results = check(args.config, args.steps, args.people, args.overrides, quick=args.quick)
    print(table(results))
    if args.out is not None:
        from utils.io import atomic_write_text

        atomic_write_text(args.out, json.dumps(results, indent=2, default=str))
    return results


script = as_script(main)

if __name__ == "__main__":
    main()
