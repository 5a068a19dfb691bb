"""Recipe search on Optuna: every trial is an ordinary run (`trainer.lifecycle.run_training`) in
`saved/<name>/tune/trial_NNNN/`, pruned on the per-epoch monitored metric; the study lives in an
Optuna RDB storage (SQLite under the tune directory by default), which every process or machine
running the same command joins."""
from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import optuna
import pandas as pd

from experiments.comparison import compare_runs
from experiments.search_space import CategoricalParam, FloatParam, SearchSpace, load_space, overrides_for
from experiments.storage import check_storage, engine_kwargs, shown, storage_for, with_retries
from trainer.lifecycle import run_training
from trainer.trainer import StopRun
from utils.config import Config, load_config
from utils.errors import ConfigError, DataError, UserError, first_line
from utils.io import atomic_write_text
from utils.run_dir import RunDir, TuneDir

LOG = logging.getLogger(__name__)
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
MAX_FAILURES = 3  # trials failing in a row before the search stops


class TrialPruned(StopRun, optuna.TrialPruned):
    """Raised from the epoch callback: the run ends, marked `pruned`, and so does the trial."""

    status = "pruned"


class PruneOnMonitor:
    """Epoch callback: report the monitored metric to the trial; stop the run when Optuna prunes it, or
    when `deadline` (the search's --timeout, a `time.time()` value) has passed: then the trial ends at this
    epoch boundary as pruned, its scores so far kept."""

    def __init__(self, trial: optuna.Trial, metric: str, deadline: Optional[float] = None) -> None:
        self.trial, self.metric, self.deadline = trial, metric, deadline

    def __call__(self, trainer: Any, epoch: int, metrics: dict, result: Any, improved: bool) -> None:
        if self.metric in metrics:
            self.trial.report(metrics[self.metric], epoch)
            if self.trial.should_prune():
                raise TrialPruned(f"trial {self.trial.number} pruned after epoch {epoch}")
        if self.deadline is not None and time.time() >= self.deadline:
            self.trial.set_user_attr("stopped", "timeout")
            raise TrialPruned(f"trial {self.trial.number} stopped after epoch {epoch}: the search's --timeout "
                              "has passed (kept as a pruned trial)")


def tune_root(config: Config) -> Path:
    """`save_dir/<name>/tune`: the study's trials, its SQLite file and its outputs."""
    return Path(config.save_dir) / config.name / "tune"


def stored_choice(value: Any) -> Any:
    """A categorical choice as Optuna stores it: lists and mappings (image sizes, augmentation lists) as JSON
    strings, since its distributions hold only scalars."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def trial_params(values: dict[str, Any]) -> dict[str, Any]:
    """`values` as Optuna stores them (see `stored_choice`; the numeric ones are scalars already)."""
    return {k: stored_choice(v) for k, v in values.items()}


def enqueue_seeds(study: optuna.Study, space: SearchSpace) -> None:
    """Queue the space's `seed_trials` (known good recipes) before any sampled trial; a study that
    already holds one (a rerun, another worker) does not get it twice."""
    for values in space.seed_trials:
        study.enqueue_trial(trial_params(values), skip_if_exists=True)


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """One value per parameter of `space` (lists such as image sizes travel as JSON strings)."""
    values: dict[str, Any] = {}
    for key, param in space.params.items():
        if isinstance(param, CategoricalParam):
            choices = {stored_choice(c): c for c in param.categorical}  # as Optuna stores it -> the value
            values[key] = choices[trial.suggest_categorical(key, list(choices))]
        elif isinstance(param, FloatParam):
            values[key] = trial.suggest_float(key, *param.float, log=param.log)
        else:
            values[key] = trial.suggest_int(key, *param.int, step=param.step, log=param.log)
    return values


def make_pruner(space: SearchSpace, max_epochs: int) -> optuna.pruners.BasePruner:
    spec = space.pruner
    if spec.name == "none":
        return optuna.pruners.NopPruner()
    if spec.name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, spec.warmup_epochs), max_resource=max_epochs)
    return optuna.pruners.MedianPruner(n_startup_trials=spec.startup_trials, n_warmup_steps=spec.warmup_epochs)


def make_sampler(space: SearchSpace) -> optuna.samplers.BaseSampler:
    if space.sampler.name == "random":
        return optuna.samplers.RandomSampler(seed=space.sampler.seed)
    return optuna.samplers.TPESampler(seed=space.sampler.seed)


class Objective:
    """Train one trial's config as an ordinary run; its value is the run's best monitored metric."""

    def __init__(self, config_path: Optional[Path], overrides: Sequence[str], space: SearchSpace, root: Path,
                 deadline: Optional[float] = None) -> None:
        self.config_path, self.overrides, self.space, self.root = config_path, list(overrides), space, root
        self.deadline = deadline  # a trial running past it stops at its next epoch boundary

    def __call__(self, trial: optuna.Trial) -> float:
        values = suggest(trial, self.space)
        trial_overrides = [*self.overrides, *overrides_for(values)]
        config = load_config(self.config_path, trial_overrides)
        run_dir = TuneDir(self.root).trial(trial.number)
        trial.set_user_attr("run_dir", str(run_dir))
        start = time.time()
        try:
            summary, _ = run_training(config, overrides=trial_overrides, run_dir=run_dir, hparams=values,
                                      callbacks=[PruneOnMonitor(trial, config.trainer.monitor.metric,
                                                                deadline=self.deadline)])
        except StopRun:
            trial.set_user_attr("seconds", time.time() - start)
            raise
        except Exception as err:
            trial.set_user_attr("error", f"{type(err).__name__}: {first_line(err)}"[:500])
            raise
        trial.set_user_attr("seconds", time.time() - start)
        trial.set_user_attr("epochs", summary["epochs"])
        return float(summary["best"])


def open_study(config: Config, space: SearchSpace, *, storage: Optional[str], study_name: Optional[str],
               heartbeat: int) -> optuna.Study:
    """Create or join the study (same name and storage -> same study), after checking the storage; a
    study created for the other optimisation direction is refused."""
    root = tune_root(config)
    root.mkdir(parents=True, exist_ok=True)
    url = storage_for(storage, root)
    check_storage(url)
    direction = config.trainer.monitor.direction

    def connect() -> optuna.Study:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats
            rdb = optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat, grace_period=2 * heartbeat,
                                             engine_kwargs=engine_kwargs(url))
        return optuna.create_study(study_name=study_name or config.name, storage=rdb, load_if_exists=True,
                                   direction=direction, sampler=make_sampler(space),
                                   pruner=make_pruner(space, config.trainer.epochs))

    study = with_retries(connect, url, lock=TuneDir(root).storage_lock)
    if study.direction.name.lower() != direction:
        raise ConfigError(f"trainer.monitor '{config.trainer.monitor}': study {study.study_name!r} in {shown(url)} "
                          f"was created to {study.direction.name.lower()}; continue it with the same monitor "
                          "direction, or start a new study (--study NAME)")
    return study


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, best metric, epochs run, seconds, parameters, run directory."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        epochs = t.user_attrs.get("epochs", max(t.intermediate_values, default=0))
        rows.append({"trial": t.number, "state": t.state.name.lower(), "value": t.value, "epochs": epochs,
                     "seconds": round(t.user_attrs.get("seconds", 0.0), 1), **t.params,
                     "run_dir": t.user_attrs.get("run_dir", "")})
    return pd.DataFrame(rows)


MIN_IMPORTANCE_TRIALS = 10  # fewer complete trials than this: importances are noise, and say so


def save_plots(study: optuna.Study, root: Path, target: str = "Objective Value") -> list[Path]:
    """Optimisation history, parameter importances and parallel coordinates as PNG (Optuna's
    matplotlib visualisation) with `target` (the monitored metric) on their value axes; importances
    from fewer than MIN_IMPORTANCE_TRIALS complete trials carry a warning in the title and the log; plots
    that need more finished trials are left out."""
    import matplotlib

    matplotlib.use("Agg")
    written = []
    for name in PLOTS:
        try:
            ax = search_plot(study, name, target)
            path = TuneDir(root).plot(name)
            ax.figure.savefig(path, dpi=100, bbox_inches="tight")
            matplotlib.pyplot.close(ax.figure)
            written.append(path)
        except (ValueError, RuntimeError, ZeroDivisionError, IndexError) as err:
            LOG.info("plot %s skipped (%s)", name, first_line(err) if str(err) else type(err).__name__)
    return written


PLOTS = ("history", "importances", "parallel_coordinates")


def search_plot(study: optuna.Study, name: str, target: str) -> Any:
    """The axes of one of PLOTS (see `save_plots`)."""
    from optuna.visualization import matplotlib as ovm

    plot = {"history": ovm.plot_optimization_history, "importances": ovm.plot_param_importances,
            "parallel_coordinates": ovm.plot_parallel_coordinate}[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        axes = plot(study, target_name=target)
    ax = axes if hasattr(axes, "figure") else axes.flat[0]
    complete = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    if name == "importances" and complete < MIN_IMPORTANCE_TRIALS:
        note = f"from {complete} complete trials: too few to rank parameters (>= {MIN_IMPORTANCE_TRIALS})"
        ax.set_title(f"{ax.get_title()}\n{note}", color="darkred")
        LOG.warning("parameter importances %s", note)
    if name == "parallel_coordinates":
        readable_parallel_coordinates(ax)
    return ax


def readable_parallel_coordinates(ax: Any) -> None:
    """Optuna's parallel coordinates, legible: wider, axis labels slanted, and every trial's line in a
    colour map whose worst end is still visible (Optuna's "Blues" fades the worse trials into white)."""
    from matplotlib.collections import LineCollection

    labels = ax.get_xticklabels()
    ax.figure.set_size_inches(max(8.0, 1.6 * len(labels)), 5.0)
    ax.set_xticks(ax.get_xticks(), [t.get_text() for t in labels], rotation=25, ha="right")
    for lines in ax.collections:
        if isinstance(lines, LineCollection):
            lines.set_cmap("viridis")
            lines.set_linewidth(1.6)
            if lines.colorbar is not None:
                lines.colorbar.update_normal(lines)


def write_outputs(study: optuna.Study, root: Path, target: str = "Objective Value") -> dict[str, Any]:
    """trials.csv, best_config.yaml (the best trial's resolved config, ready for train.py --config)
    and the plots (`target`: the monitored metric's name); returns what was written."""
    table = trials_table(study)
    tune_dir = TuneDir(root)
    atomic_write_text(tune_dir.trials_csv, table.to_csv(index=False))
    out: dict[str, Any] = {"trials": table, "plots": save_plots(study, root, target)}
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        source = RunDir(best.user_attrs["run_dir"]).config
        if source.is_file():
            tmp = tune_dir.best_config.with_name(tune_dir.best_config.name + ".tmp")
            shutil.copyfile(source, tmp)
            tmp.replace(tune_dir.best_config)
            out.update(best_trial=best.number, best_value=best.value, best_config=tune_dir.best_config)
    return out


def judge_best(study: optuna.Study) -> Optional[str]:
    """Whether the best trial beats the recipe the search started from (its best seed trial, else its first
    trial) beyond the people bootstrap (`experiments.comparison`), in one line; None without finished trials."""
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        return None
    best = study.best_trial
    seeds = [t for t in complete if "fixed_params" in t.system_attrs]
    sign = 1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1
    start = max(seeds, key=lambda t: sign * t.value) if seeds else min(complete, key=lambda t: t.number)
    what = f"{'seed recipe' if seeds else 'first trial'} (trial {start.number})"
    if best.number == start.number:
        return f"judged: the best trial is the {what}; the search found nothing that scored higher"
    try:
        result = compare_runs([start.user_attrs["run_dir"], best.user_attrs["run_dir"]])[0]
    except (UserError, KeyError) as err:
        return f"judged: cannot compare trial {best.number} with the {what}: {first_line(err)}"
    return f"judged: best trial {best.number} against the {what}: {result['text']}"


def run_trials(study: optuna.Study, objective: Objective, *, trials: int, timeout: Optional[float],
               max_failures: int = MAX_FAILURES) -> str:
    """Start trials one at a time until the study holds `trials` finished or running trials (so processes
    sharing the study stop together), `timeout` seconds have passed (a trial then running stops at its next
    epoch boundary), or `max_failures` trials in a row failed (then one line with the last failure's
    reason). Returns why it stopped."""
    deadline = time.time() + timeout if timeout is not None else None
    objective.deadline = deadline
    failures = 0
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # killed processes' trials, past their heartbeat
        taken = len(study.get_trials(deepcopy=False, states=(*FINISHED, optuna.trial.TrialState.RUNNING)))
        if taken >= trials:
            return f"the study holds {taken} finished or running trials (--trials {trials})"
        if deadline is not None and time.time() >= deadline:
            return f"--timeout {timeout:g} s reached"
        study.optimize(objective, n_trials=1, catch=(Exception,))
        last = study.get_trials(deepcopy=False)[-1]
        failures = failures + 1 if last.state == optuna.trial.TrialState.FAIL else 0
        if failures >= max_failures:
            reason = last.user_attrs.get("error", "see its train.log")
            raise UserError(f"tune: {failures} trials in a row failed; the last (trial {last.number}): {reason}")


def run_study(config_path: Optional[Path], space_path: Path, *, trials: int, timeout: Optional[float],
              storage: Optional[str], study_name: Optional[str], overrides: Sequence[str],
              heartbeat: int = 60) -> dict[str, Any]:
    """Validate everything, then run trials until the study holds `trials` finished (complete or
    pruned) trials or `timeout` seconds pass; rerunning continues the study."""
    config = load_config(config_path, overrides)
    space = load_space(space_path, config_path, list(overrides))
    if config.data.val_ratio == 0 and config.data.n_folds < 2 and config.trainer.monitor.needs_validation:
        raise ConfigError(f"tune: trainer.monitor '{config.trainer.monitor}' needs a validation set "
                          "(data.val_ratio > 0)")
    shadowed = sorted({o.partition("=")[0].strip() for o in overrides} & set(space.params))
    if shadowed:
        raise ConfigError(f"{shadowed[0]}: given on the command line and searched by {space_path}; "
                          "drop one of them")
    train_csv = Path(config.data.train_dir) / "train.csv"
    if not train_csv.is_file():
        raise DataError(f"data.train_dir: {train_csv} not found (every trial would fail)")
    study = open_study(config, space, storage=storage, study_name=study_name, heartbeat=heartbeat)
    enqueue_seeds(study, space)
    root = tune_root(config)
    finished = len(study.get_trials(deepcopy=False, states=FINISHED))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if finished < trials:
        LOG.info("study %s: %d of %d trials finished; storage %s", study.study_name, finished, trials,
                 shown(storage_for(storage, root)))
        reason = run_trials(study, Objective(config_path, overrides, space, root), trials=trials, timeout=timeout)
        LOG.info("tune: stopped starting trials: %s", reason)
    out = write_outputs(study, root, target=config.trainer.monitor.metric)
    out["study"] = study
    out["judged"] = judge_best(study)
    return out
