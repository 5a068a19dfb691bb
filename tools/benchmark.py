"""Throughput: `python -m tools.benchmark --config configs/demo.yaml [--steps N] [key=value ...]`.

(a) input pipeline alone: decoding full-size JPEGs, decoding in draft mode, and from the memory
cache; (b) the train step alone on batches already on the device; (c) the framework's full
train loop (one epoch); (d) a bare reference loop (plain PyTorch + timm: same model, batch,
size, transforms and images, no framework). (c) and (d) alternate twice in the same process; the best of each is kept.
(e) where an epoch of the framework goes: training (and within it the wait for the loader), validation, logging,
checkpoint writes, with the GPU's busy share sampled meanwhile (`UtilisationSampler`).
"""
from __future__ import annotations

import argparse
import itertools
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from data_loader.datasets import ImageDataset
from model.classifier import feature_dim
from trainer.build import build_trainer
from trainer.trainer import Trainer, set_loader_epoch
from utils.cli import as_script, cli_main
from utils.config import Config, load_config
from utils.seed import seed_everything


def timed(func: Callable[[], int], device: torch.device) -> float:
    """Images per second of `func`, which returns how many images it processed."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    n = func()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def pipeline_rate(trainer: Trainer, steps: int) -> float:
    """(a) batches from the training loader, nothing else."""
    set_loader_epoch(trainer.train_loader, 1)
    def run() -> int:
        return sum(len(batch[1]) for batch in itertools.islice(trainer.train_loader, steps))
    return timed(run, torch.device("cpu"))


def step_rate(trainer: Trainer, steps: int) -> float:
    """(b) `Trainer.train_step` on batches already on the device."""
    trainer.freeze.set_train_mode(trainer.model)
    batches = [trainer.to_device(x, y) for x, y, _ in itertools.islice(trainer.train_loader, min(steps, 8))]
    trainer.train_step(*batches[0], 0)  # warm-up

    def run() -> int:
        for i in range(steps):
            trainer.train_step(*batches[i % len(batches)], i)
        return steps * len(batches[0][1])
    return timed(run, trainer.device)


class PlainDataset(Dataset):
    """The reference's dataset: the same images and transform, no seeding, no indices."""

    def __init__(self, source: ImageDataset) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int):
        source = self.source
        return source.transform(image=source.decoded(i))["image"], int(source.labels[i])


def reference_rate(config: Config, trainer: Trainer) -> float:
    """(d) a bare loop: timm model + head, AdamW, cross-entropy, a plain shuffled DataLoader. One untimed
    epoch first, as the framework's loop is warm when timed (workers started, kernels chosen, memory pooled).
    The backbone gets the recipe's dropout and stochastic depth, so the ratio measures the loop, not them."""
    import timm

    device = trainer.device
    backbone = timm.create_model(config.model.backbone, num_classes=0, drop_rate=config.model.drop_rate,
                                 drop_path_rate=config.model.drop_path_rate)
    model = torch.nn.Sequential(backbone, torch.nn.Linear(feature_dim(backbone), 18)).to(device)
    if config.trainer.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.optimizer.lr)
    workers = trainer.train_loader.num_workers
    loader = DataLoader(PlainDataset(trainer.train_loader.dataset), batch_size=config.data.batch_size,
                        shuffle=True, drop_last=True, num_workers=workers, pin_memory=device.type == "cuda",
                        persistent_workers=workers > 0)
    dtype = trainer.amp_dtype

    def run() -> int:
        n = 0
        model.train()
        for images, targets in loader:
            images = images.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            if config.trainer.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = torch.nn.functional.cross_entropy(model(images), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            n += len(targets)
        return n
    run()
    return timed(run, device)


def framework_rate(trainer: Trainer) -> float:
    """(c) `Trainer.train_epoch`: loader, step, metrics, scheduler, progress bar; one untimed epoch first."""
    def run() -> int:
        trainer.train_epoch()
        return len(trainer.train_loader) * trainer.train_loader.batch_size
    run()
    return timed(run, trainer.device)


class UtilisationSampler:
    """The GPU's busy percent (NVML, through `torch.cuda.utilization`) sampled every `interval` seconds in a
    thread while inside the `with` block; `mean` is None on the CPU or where NVML cannot be read."""

    def __init__(self, device: torch.device, interval: float = 0.2) -> None:
        self.device, self.interval, self.samples = device, interval, []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.samples.append(float(torch.cuda.utilization(self.device)))
            except Exception:  # noqa: BLE001 - no NVML (pynvml) here: no figure, not a failure
                return

    def __enter__(self) -> "UtilisationSampler":
        if self.device.type == "cuda":
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def mean(self) -> Optional[float]:
        return sum(self.samples) / len(self.samples) if self.samples else None


def epoch_breakdown(config: Config) -> dict[str, Any]:
    """(e) The second of two framework epochs (the first fills caches and warms up), section by section, with
    checkpoints written to a temporary run directory: seconds, shares of the epoch, and the GPU's busy percent."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_trainer(config, run_dir=Path(tmp))
        trainer.run_epoch()
        with UtilisationSampler(trainer.device) as sampler:
            trainer.run_epoch()
    seconds = trainer.clock.seconds
    return {"seconds": dict(seconds), "shares": trainer.clock.shares(), "gpu_util_percent": sampler.mean,
            "images": len(trainer.train_loader.dataset)}


def describe_breakdown(breakdown: dict[str, Any]) -> str:
    """'train 12.1 s 85 % (loader wait 0.3 s 2 %), val 1.9 s 13 %, ...' for logs and tables."""
    seconds, shares = breakdown["seconds"], breakdown["shares"]
    parts = [f"{name} {seconds[name]:.1f} s {shares[name]:.0%}" for name in seconds if name != "loader_wait"]
    parts[0] += f" (loader wait {seconds['loader_wait']:.1f} s {shares['loader_wait']:.0%})"
    util = breakdown["gpu_util_percent"]
    return ", ".join(parts) + (f"; GPU busy {util:.0f} %" if util is not None else "")


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def run_benchmark(config: Config, steps: int) -> dict[str, float]:
    """All figures for one resolved config."""
    seed_everything(config.seed)
    results: dict[str, float] = {}
    full = config.model_copy(update={"data": config.data.model_copy(update={"cache": "none", "jpeg_draft": False})})
    results["a_pipeline_decode_full"] = pipeline_rate(build_trainer(full), steps)
    no_cache = config.model_copy(update={"data": config.data.model_copy(update={"cache": "none"})})
    results["a_pipeline_decode"] = pipeline_rate(build_trainer(no_cache), steps)
    cached = config.model_copy(update={"data": config.data.model_copy(update={"cache": "memory"})})
    trainer = build_trainer(cached)
    results["a_pipeline_cached"] = pipeline_rate(trainer, steps)
    results["b_train_step"] = step_rate(trainer, steps)
    trainer = build_trainer(cached if config.data.cache == "memory" else no_cache)
    c_runs, d_runs = [], []
    for _ in range(2):
        d_runs.append(reference_rate(config, trainer))
        c_runs.append(framework_rate(trainer))
    results["c_full_loop"], results["d_reference"] = max(c_runs), max(d_runs)
    results["c_over_d"] = results["c_full_loop"] / results["d_reference"]
    results["cache_speedup"] = results["a_pipeline_cached"] / results["a_pipeline_decode"]
    results["cache_speedup_full"] = results["a_pipeline_cached"] / results["a_pipeline_decode_full"]
    results.update(peak_memory_mb(trainer.device))
    breakdown = epoch_breakdown(config)
    results.update({f"e_{name}_s": value for name, value in breakdown["seconds"].items()})
    results.update({f"e_{name}_share": value for name, value in breakdown["shares"].items()})
    if breakdown["gpu_util_percent"] is not None:
        results["e_gpu_util_percent"] = breakdown["gpu_util_percent"]
    return results


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, metavar="YAML")
    parser.add_argument("--steps", type=int, default=30, metavar="N", help="batches for (a) and (b)")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value")
    args = parser.parse_intermixed_args(argv)
    config = load_config(args.config, args.overrides)
    results = run_benchmark(config, args.steps)
    for key, value in results.items():
        unit = {"peak": " MB", "c_over": "", "cache": "", "e_": ""}.get(
            next((p for p in ("peak", "c_over", "cache", "e_") if key.startswith(p)), ""), " img/s")
        print(f"{key:<20} {value:10.2f}{unit}")
    return results


script = as_script(main)

if __name__ == "__main__":
    main()
