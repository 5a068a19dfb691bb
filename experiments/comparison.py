"""Is run B better than run A, or is that seed noise? A paired people bootstrap over validation predictions.

Each side is a run (`val_predictions.csv`), a K-fold run (`oof.csv`) or a repeated run (`train.py --seeds N`:
one set per training seed, one split). Both sides must be validated on the same photos; each resample draws
the validation people with replacement once and scores both sides on it (paired), so what the two runs
share (hard people, easy people) cancels. A repeated side also resamples its seeds, so the interval
holds the seed spread as well as the people's. NumPy and pandas only.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from utils.bootstrap import DEFAULT_RESAMPLES, interval, person_confusions, person_index, resample_counts, scores_of
from utils.errors import UserError
from utils.labels import TASKS, class_names
from utils.predictions import Predictions, read_predictions
from utils.run_dir import RunDir, read_config

TOP_CLASSES = 3  # classes that moved most, shown per comparison


@dataclass(frozen=True)
class Side:
    """What one argument of the comparison stands for: its kind and one prediction set per member."""

    name: str
    kind: str  # run | K-fold run | repeated run | predictions file
    members: tuple[Predictions, ...]
    config: dict[str, Any] = field(default_factory=dict, repr=False)
    val_ratio: Optional[float] = None

    @property
    def first(self) -> Predictions:
        return self.members[0]


def predictions_of(run: RunDir, name: str) -> tuple[str, Predictions]:
    """(kind, predictions) of an ordinary or K-fold run directory; one line when it has none."""
    if run.oof.is_file():
        return "K-fold run", read_predictions(run.oof)
    if run.val_predictions.is_file():
        return "run", read_predictions(run.val_predictions)
    if run.folds_dir.is_dir():
        raise UserError(f"{name}: a K-fold run without oof.csv (not finished: train.py --resume each fold)")
    raise UserError(f"{name}: no {run.val_predictions.name} (a run without a validation set, or trained before "
                    "runs kept their validation predictions)")


def same_photos(name: str, sets: list[Predictions], sources: list[Any]) -> None:
    """Members of one side (seeds of one recipe) must predict the same photos; one line naming the odd one."""
    for source, preds in zip(sources[1:], sets[1:]):
        if not np.array_equal(preds.paths, sets[0].paths):
            raise UserError(f"{source}: predicts other photos than {sources[0]} (the members of {name} must share "
                            "one split: data.split_seed, or one eval set)")


def load_side(arg: str | Path) -> Side:
    """A run directory, a K-fold run, a repeated run, a predictions CSV, or several predictions CSVs joined by
    commas (`a.csv,b.csv`: training seeds of one recipe on the same photos), as one side of a comparison."""
    path, name = Path(arg), str(arg)
    if "," in name and not path.exists():
        files = [Path(part) for part in name.split(",") if part]
        missing = next((f for f in files if not f.is_file()), None)
        if missing is not None:
            raise UserError(f"{name}: {missing} is not a predictions file")
        sets = [read_predictions(f) for f in files]
        same_photos(name, sets, files)
        return Side(name, "predictions files" if len(files) > 1 else "predictions file", tuple(sets),
                    read_config(RunDir(files[0].parent)))
    if path.is_file():
        return Side(name, "predictions file", (read_predictions(path),), read_config(RunDir(path.parent)))
    if not path.is_dir():
        raise UserError(f"{name}: no such run directory or predictions file")
    run = RunDir(path)
    config = read_config(run)
    val_ratio = (config.get("data") or {}).get("val_ratio") if isinstance(config.get("data"), dict) else None
    if run.is_repeated:
        members = run.members()
        if not members:
            raise UserError(f"{name}: a repeated run without members under {run.seeds_dir.name}/")
        sets = [predictions_of(m, str(m))[1] for m in members]
        same_photos(name, sets, members)
        return Side(name, "repeated run", tuple(sets), config, val_ratio)
    kind, preds = predictions_of(run, name)
    return Side(name, kind, (preds,), config, val_ratio)


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a.b': value} of a nested config."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_differences(base: dict[str, Any], other: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """The resolved configs' differing keys: (key, base value, other value), keys sorted."""
    a, b = flatten(base), flatten(other)
    missing = object()
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if a.get(k, missing) != b.get(k, missing)]


def check_paired(base: Side, other: Side) -> None:
    """Paired comparison needs the same validation photos on both sides; one line naming the runs."""
    a, b = base.first, other.first
    if not np.array_equal(a.paths, b.paths):
        shared = len(np.intersect1d(a.paths, b.paths))
        raise UserError(f"{other.name} and {base.name} are validated on different people ({b.n_people} vs "
                        f"{a.n_people} people, {shared} photos shared): compare runs of one split "
                        "(data.split_seed, data.n_folds) or pass --unpaired")


def side_samples(side: Side, person: np.ndarray, n_people: int, counts: np.ndarray,
                 rng: np.random.Generator) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The side's point scores (mean over members) and its bootstrap scores; a repeated side draws its
    members (seeds) with replacement in each resample and averages them."""
    confusions = [person_confusions(m.labels, m.preds, person, n_people) for m in side.members]
    points = [scores_of(c.sum(axis=0)) for c in confusions]
    point = {k: float(np.mean([p[k] for p in points])) for k in points[0]}
    per_member = [scores_of(counts @ c) for c in confusions]
    if len(per_member) == 1:
        return point, per_member[0]
    n_resamples, n_members = counts.shape[0], len(per_member)
    pick = rng.integers(0, n_members, size=(n_resamples, n_members))
    rows = np.arange(n_resamples)[:, None]
    samples = {k: np.stack([m[k] for m in per_member])[pick, rows].mean(axis=1) for k in per_member[0]}
    return point, samples


def mean_interval(side: Side, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """One side's macro-F1 (its members' mean) and 95 % interval, people (and seeds) resampled."""
    rng = np.random.default_rng(seed)
    person, n_people = person_index(side.first.people)
    point, samples = side_samples(side, person, n_people, resample_counts(n_people, n_resamples, rng), rng)
    return (point["f1"], *interval(samples["f1"]))


def verdict_word(low: float, high: float) -> str:
    return "better" if low > 0 else "worse" if high < 0 else "no difference shown"


def signed(value: float) -> str:
    """+0.021 / −0.011 (a real minus sign, as printed intervals read)."""
    return f"{value:+.3f}".replace("-", "\u2212")


def verdict_text(delta: float, low: float, high: float) -> str:
    word = verdict_word(low, high)
    ci = f"{signed(low)} … {signed(high)}"
    return f"{word}: {signed(delta)} (95 % CI {ci})" if word != "no difference shown" else \
        f"{word}: {signed(delta)} ({ci})"


def people_needed(n_people: int, delta: float, low: float, high: float) -> Optional[int]:
    """About how many validation people would make an interval as narrow as |delta| (width shrinks as
    1/sqrt(people)); None when there is no difference to show."""
    half = (high - low) / 2
    if delta == 0 or not math.isfinite(half):
        return None
    return int(math.ceil(n_people * (half / abs(delta)) ** 2))


def summarise(name: str, key: str, point_a: dict, point_b: dict, deltas: np.ndarray) -> dict[str, Any]:
    low, high = interval(deltas)
    delta = point_b[key] - point_a[key]
    return {"run": name, "metric": key, "a": point_a[key], "b": point_b[key], "delta": delta,
            "ci_low": low, "ci_high": high, "p_better": float(np.mean(deltas > 0) + 0.5 * np.mean(deltas == 0)),
            "verdict": verdict_word(low, high)}


def compare_pair(base: Side, other: Side, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                 unpaired: bool = False) -> dict[str, Any]:
    """`other` against `base`: Δ macro-F1 overall, per task and per class with 95 % intervals, P(better),
    the verdict and the people a difference of this size would need."""
    if not unpaired:
        check_paired(base, other)
    rng = np.random.default_rng(seed)
    person_a, n_a = person_index(base.first.people)
    counts_a = resample_counts(n_a, n_resamples, rng)
    if unpaired:
        person_b, n_b = person_index(other.first.people)
        counts_b = resample_counts(n_b, n_resamples, rng)
    else:
        person_b, n_b, counts_b = person_a, n_a, counts_a
    point_a, samples_a = side_samples(base, person_a, n_a, counts_a, rng)
    point_b, samples_b = side_samples(other, person_b, n_b, counts_b, rng)
    deltas = {k: samples_b[k] - samples_a[k] for k in samples_a}
    overall = summarise(other.name, "f1", point_a, point_b, deltas["f1"])
    tasks = {t: summarise(other.name, f"f1_{t}", point_a, point_b, deltas[f"f1_{t}"]) for t in TASKS}
    names = class_names()
    shift = {c: point_b[f"f1_c{c:02d}"] - point_a[f"f1_c{c:02d}"] for c in range(len(names))}
    moved = sorted((c for c in shift if shift[c] != 0), key=lambda c: -abs(shift[c]))
    classes = [{**summarise(other.name, f"f1_c{c:02d}", point_a, point_b, deltas[f"f1_c{c:02d}"]),
                "class": names[c]} for c in moved[:TOP_CLASSES]]
    needed = people_needed(min(n_a, n_b), overall["delta"], overall["ci_low"], overall["ci_high"])
    return {**overall, "against": base.name, "paired": not unpaired, "people": n_a if not unpaired else [n_a, n_b],
            "photos": len(base.first), "resamples": n_resamples, "seeds": [len(base.members), len(other.members)],
            "people_needed": needed, "kinds": [base.kind, other.kind], "val_ratio": base.val_ratio,
            "tasks": tasks, "classes": classes,
            "text": verdict_text(overall["delta"], overall["ci_low"], overall["ci_high"]),
            "differs": [list(d) for d in config_differences(base.config, other.config)]}


def compare_runs(args: Sequence[str | Path], *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                 unpaired: bool = False) -> list[dict[str, Any]]:
    """Every run after the first against the first (all loaded and checked before any is scored)."""
    if len(args) < 2:
        raise UserError("compare: give at least two runs (the first is the reference)")
    if n_resamples < 100:
        raise UserError(f"--resamples {n_resamples}: need at least 100 for a 95 % interval")
    sides = [load_side(a) for a in args]
    if not unpaired:
        for other in sides[1:]:
            check_paired(sides[0], other)
    return [compare_pair(sides[0], other, n_resamples=n_resamples, seed=seed, unpaired=unpaired)
            for other in sides[1:]]


def describe(result: dict[str, Any]) -> str:
    """The comparison as text a person acts on."""
    people = result["people"]
    how = (f"paired bootstrap over {people} validation people ({result['photos']} photos)" if result["paired"]
           else f"UNPAIRED bootstrap ({people[0]} and {people[1]} people, drawn independently)")
    seeds = result["seeds"]
    spread = f"; the seed spread of {seeds[0]} and {seeds[1]} seeds included" if max(seeds) > 1 else ""
    lines = [f"{result['run']} vs {result['against']}: {how}, {result['resamples']} resamples{spread}"]
    differs = result["differs"]
    lines.append("  what differs: " + (", ".join(f"{k}: {shown(a)} -> {shown(b)}" for k, a, b in differs)
                                       if differs else "nothing in the resolved configs"))
    rows = [("macro-F1", result), *((t, result["tasks"][t]) for t in TASKS),
            *((c["class"], c) for c in result["classes"])]
    for label, r in rows:
        lines.append(f"  {label:<22} {r['a']:.4f} -> {r['b']:.4f}  {signed(r['delta'])} "
                     f"({signed(r['ci_low'])} … {signed(r['ci_high'])})  P(better) {r['p_better']:.2f}")
    verdict = f"  verdict: {result['text']}"
    needed = result["people_needed"]
    if result["verdict"] == "no difference shown" and needed is not None:
        n = people if isinstance(people, int) else min(people)
        verdict += f"; a difference of this size would need about {needed:,} validation people to show (now {n})"
        ratio = result["val_ratio"]
        if "run" in result["kinds"] and isinstance(ratio, (int, float)) and 0 < ratio < 1:
            verdict += (f"; K-fold runs (train.py --all-folds data.n_folds=5) validate on all ≈{round(n / ratio):,} "
                        "training people")
    lines.append(verdict)
    return "\n".join(lines)


def shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:59] + "…"
