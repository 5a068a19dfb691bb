"""Reading a config: YAML files (safe loader, bounded aliases, `base:` recipes), `key.sub=value` overrides,
and the one-line errors that name the file or override, the key and a did-you-mean. `load_config` is the
entry; `read_saved_config` reads a run's resolved `config.yaml` back without torch."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml
from pydantic import ValidationError

from utils.config.schema import Config, section_fields
from utils.errors import ConfigError, did_you_mean


class _Loader(yaml.SafeLoader):
    """Safe YAML loader that also reads `1e-3` as a float (YAML 1.1 needs `1.0e-3`)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split 'a.b=value' into (['a', 'b'], parsed value)."""
    key, sep, raw = text.partition("=")
    if not sep or not key or not all(key.split(".")):
        raise ConfigError(f"override {text!r}: expected key.sub=value")
    try:
        value = _bounded(yaml.load(raw, Loader=_Loader), f"override {text!r}") if raw else None
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({err.__class__.__name__})") from None
    return key.split("."), value


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, str]:
    """Set each override into `raw` in place; return {dotted key: override text}."""
    sources = {}
    for text in overrides:
        keys, value = parse_override(text)
        node = raw
        for i, k in enumerate(keys[:-1]):
            child = node.setdefault(k, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {'.'.join(keys[: i + 1])} is not a section")
            node = child
        node[keys[-1]] = value
        sources[".".join(keys)] = text
    return sources


MAX_YAML_VALUES = 100_000  # a config has a few hundred; YAML aliases could expand to billions


def expanded_size(value: Any, memo: Optional[dict[int, int]] = None) -> int:
    """How many values `value` holds once YAML aliases are expanded (shared nodes counted each time)."""
    memo = {} if memo is None else memo
    if id(value) in memo:
        return memo[id(value)]
    children: Any = ()
    if isinstance(value, dict):
        children = value.values()
    elif isinstance(value, list):
        children = value
    memo[id(value)] = size = 1 + sum(expanded_size(child, memo) for child in children)
    return size


def _bounded(data: Any, where: str) -> Any:
    if expanded_size(data) > MAX_YAML_VALUES:
        raise ConfigError(f"{where}: expands to more than {MAX_YAML_VALUES:,} values (YAML aliases?); refused")
    return data


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader; errors name the file."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = _bounded(yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader), str(path))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} invalid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def _describe(err: dict[str, Any]) -> tuple[str, str]:
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key" + did_you_mean(str(err["loc"][-1]), section_fields(err["loc"][:-1]))
    elif err["type"] == "literal_error":
        choices = re.findall(r"'([^']*)'", err.get("ctx", {}).get("expected", ""))
        value = str(err.get("input"))
        hint = did_you_mean(value, choices) or f" (choose from: {', '.join(choices)})"
        msg = f"unknown value {value!r}{hint}"
    elif err["type"] not in ("missing", "value_error") and not isinstance(err.get("input"), dict):
        msg = f"{msg} (got {err['input']!r})"
    return loc, msg


def unknown_key(raw: Any, path: tuple[str, ...] = ()) -> Optional[tuple[str, ...]]:
    """The first key of `raw` the schema does not have, or None (checked before pydantic, whose first error
    may be elsewhere)."""
    if not isinstance(raw, dict):
        return None
    allowed = section_fields(list(path))
    for key, value in raw.items():
        if allowed and str(key) not in allowed:
            return (*path, str(key))
        if section_fields([*path, str(key)]):
            found = unknown_key(value, (*path, str(key)))
            if found is not None:
                return found
    return None


def build_config(raw: dict[str, Any], source: str, override_sources: dict[str, str] | None = None, *,
                 resolve: bool = True) -> Config:
    """Validate a raw mapping; the first problem becomes a one-line `ConfigError`. With `resolve`, timm's
    names are checked and the backbone's input size, mean and std filled in (`utils.config.backbone`, which
    imports timm); without it, nothing beyond pydantic is imported."""
    override_sources = override_sources or {}

    def fail(loc: str, msg: str) -> ConfigError:
        origin = next((f"override {t!r}" for k, t in override_sources.items()
                       if loc == k or loc.startswith(k + ".") or k.startswith(loc + ".")), source)
        return ConfigError(f"{origin}: {loc}: {msg}")

    typo = unknown_key(raw)
    if typo is not None:
        raise fail(".".join(typo), "unknown key" + did_you_mean(typo[-1], section_fields(list(typo[:-1]))))
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise fail(*_describe(exc.errors()[0])) from None
    if not resolve:
        return config
    from utils.config.backbone import unknown_name, with_backbone_defaults

    bad = unknown_name(config)
    if bad is not None:
        raise fail(*bad)
    return with_backbone_defaults(config)


def merged(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """`child` over `base`: mappings merge key by key, anything else (lists, null) replaces."""
    out = dict(base)
    for key, value in child.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_recipe(path: Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file, resolved through `base: other.yaml` (relative to the file): the base's keys, then
    this file's on top. The result no longer holds `base`."""
    raw = read_yaml(path)
    if "base" not in raw:
        return raw
    base = raw.pop("base")
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: base must be the path of another config file, got {base!r}")
    base_path = Path(os.path.normpath(path.parent / base))
    if base_path.resolve() in {p.resolve() for p in (*_chain, path)}:
        raise ConfigError(f"{path}: base {base!r} leads back to itself")
    return merged(read_recipe(base_path, (*_chain, path)), raw)


def check_cli_values(values: dict[str, tuple[str, Any]]) -> None:
    """Check command-line values with the config's rules: {'--seed': ('seed', -1), ...}; a bad one is a
    one-line `ConfigError` naming the option."""
    overrides = {flag: f"{key}={json.dumps(value)}" for flag, (key, value) in values.items()}
    try:
        load_config(None, list(overrides.values()))
    except ConfigError as err:
        text = str(err)
        for flag, override in overrides.items():
            if text.startswith(f"override {override!r}: "):
                key, value = values[flag]
                raise ConfigError(f"{flag} {value}: {text.split(': ', 2)[-1]} (the rule of {key})") from None
        raise


def load_config(path: Optional[Path | str], overrides: Sequence[str] = (), *, resolve: bool = True) -> Config:
    """Read `path` (or start from defaults; `base:` followed), apply overrides, validate (and resolve, see
    `build_config`)."""
    raw = read_recipe(Path(path)) if path else {}
    sources = apply_overrides(raw, overrides)
    return build_config(raw, str(path) if path else "<defaults>", sources, resolve=resolve)


def read_saved_config(path: Path, raw: Optional[dict[str, Any]] = None) -> Config:
    """A resolved config as a run saved it (`config.yaml`, or `raw`, a checkpoint's copy), validated
    without torch; one saved before its sizes were recorded is resolved as a new one would be."""
    config = build_config(read_yaml(Path(path)) if raw is None else raw, str(path), resolve=False)
    if config.augment.image_size is None or config.augment.mean is None or config.augment.std is None:
        from utils.config.backbone import with_backbone_defaults

        config = with_backbone_defaults(config)
    return config


def save_config(config: Config, path: Path) -> None:
    """Write the resolved config as YAML, atomically."""
    from utils.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
