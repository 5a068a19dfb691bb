"""Search spaces for `tune.py`: a YAML file mapping config keys to distributions, validated like a config.

```yaml
pruner: {name: median, warmup_epochs: 2, startup_trials: 3}   # median | hyperband | none
sampler: {name: tpe, seed: null}                                # tpe | random
seed_trials:                                                    # optional: recipes to try first
  - {optimizer.lr: 3.0e-3, model.backbone: resnet10t}
params:
  optimizer.lr: {float: [1.0e-4, 1.0e-2], log: true}
  trainer.epochs: {int: [4, 12], step: 2}
  model.backbone: {categorical: [resnet10t, mobilenetv3_large_100]}
  augment.image_size: {categorical: [[64, 48], [128, 96]]}
```
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from utils.config import apply_overrides, build_config, read_recipe, read_yaml, section_fields
from utils.errors import ConfigError, did_you_mean


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_range(low: float, high: float, log: bool) -> None:
    """A numeric distribution needs low < high (and low > 0 on a log scale)."""
    if not low < high or (log and low <= 0):
        raise ValueError(f"needs low < high{' and low > 0 (log)' if log else ''}, got {[low, high]}")


class FloatParam(_Strict):
    float: tuple[float, float]
    log: bool = False

    @model_validator(mode="after")
    def _range(self) -> "FloatParam":
        check_range(*self.float, self.log)
        return self


class IntParam(_Strict):
    int: tuple[int, int]
    step: int = Field(1, gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _range(self) -> "IntParam":
        check_range(*self.int, self.log)
        return self


class CategoricalParam(_Strict):
    categorical: list[Any] = Field(min_length=1)


Param = Union[FloatParam, IntParam, CategoricalParam]


class PrunerSpec(_Strict):
    name: Literal["median", "hyperband", "none"] = "median"
    warmup_epochs: int = Field(2, ge=0)  # epochs a trial runs before it can be pruned
    startup_trials: int = Field(3, ge=0)  # trials that run to the end before pruning starts


class SamplerSpec(_Strict):
    name: Literal["tpe", "random"] = "tpe"
    seed: Optional[int] = None


class SearchSpace(_Strict):
    """A validated search space: `params` maps dotted config keys to distributions."""

    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    params: dict[str, Param] = Field(min_length=1)
    seed_trials: list[dict[str, Any]] = Field(default_factory=list)  # known good recipes, run first

    def admits(self, key: str, value: Any) -> bool:
        """Whether `value` is one `key`'s distribution can give."""
        param = self.params[key]
        if isinstance(param, CategoricalParam):
            return value in param.categorical
        low, high = param.float if isinstance(param, FloatParam) else param.int
        if isinstance(param, IntParam) and (not isinstance(value, int) or (value - low) % param.step):
            return False
        return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high

    def values(self, key: str) -> list[Any]:
        """Values that bound `key`'s distribution (low/high, or every choice), to validate."""
        param = self.params[key]
        if isinstance(param, CategoricalParam):
            return list(param.categorical)
        return list(param.float if isinstance(param, FloatParam) else param.int)


def _known_key(key: str) -> Optional[str]:
    """None when `key` names a config key, else what is wrong with it."""
    parts = key.split(".")
    for depth in range(len(parts)):
        allowed = section_fields(parts[:depth])
        if parts[depth] not in allowed:
            return f"unknown config key{did_you_mean(parts[depth], allowed)}"
    return None


KINDS = {"float": FloatParam, "int": IntParam, "categorical": CategoricalParam}


def _param(path: Path, key: str, spec: Any) -> Param:
    """One distribution; errors name the file and key."""
    kinds = [k for k in KINDS if isinstance(spec, dict) and k in spec]
    if len(kinds) != 1:
        raise ConfigError(f"{path}: params.{key}: give exactly one of float: [low, high], int: [low, high] "
                          f"or categorical: [choices], got {spec!r}")
    try:
        return KINDS[kinds[0]].model_validate(spec)
    except ValidationError as exc:
        where, msg = first_error(exc)
        raise ConfigError(f"{path}: params.{key}{'.' + where if where else ''}: {msg}") from None


def first_error(exc: ValidationError) -> tuple[str, str]:
    """Where (dotted) and what of a validation error's first problem, in the words of a config error."""
    err = exc.errors()[0]
    msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
    return ".".join(str(p) for p in err["loc"]), msg


def overrides_for(values: dict[str, Any]) -> list[str]:
    """`key=value` overrides (YAML flow values) for a trial's parameters."""
    import yaml

    return [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
            for k, v in values.items()]


def load_space(path: Path, config_path: Optional[Path], overrides: list[str]) -> SearchSpace:
    """Read and validate `path`: every key must be a config key and every bound or choice must give a
    valid config (with the base config and overrides). The first problem is a one-line ConfigError."""
    raw = read_yaml(Path(path))
    params = raw.get("params")
    if not isinstance(params, dict) or not params:
        raise ConfigError(f"{path}: params: a mapping of config keys to distributions is required")
    parsed = {key: _param(path, key, spec) for key, spec in params.items()}
    try:
        space = SearchSpace.model_validate({**raw, "params": parsed})
    except ValidationError as exc:
        where, msg = first_error(exc)
        raise ConfigError(f"{path}: {where}: {msg}") from None
    for k, seed in enumerate(space.seed_trials):
        for key, value in seed.items():
            if key not in space.params:
                raise ConfigError(f"{path}: seed_trials.{k}.{key}: not a searched parameter (params: "
                                  f"{', '.join(space.params)})")
            if not space.admits(key, value):
                raise ConfigError(f"{path}: seed_trials.{k}.{key}: value {value!r} is outside its distribution")
    base = read_recipe(Path(config_path)) if config_path else {}
    apply_overrides(base, overrides)
    for key in space.params:
        problem = _known_key(key)
        if problem:
            raise ConfigError(f"{path}: params.{key}: {problem}")
        for value in space.values(key):
            trial_raw = copy.deepcopy(base)
            apply_overrides(trial_raw, overrides_for({key: value}))
            try:
                build_config(trial_raw, str(config_path))
            except ConfigError as err:
                raise ConfigError(f"{path}: params.{key}: value {value!r} gives an invalid config "
                                  f"({str(err).split(': ', 1)[-1]})") from None
    return space
