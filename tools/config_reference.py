"""The config reference, generated from the schema: `python -m tools.config_reference [--out docs/config.md]`.

Every key of `utils.config.Config` with its type, default and description (the field's docstring).
`make docs` rewrites docs/config.md; a test fails when the file is stale.
"""
from __future__ import annotations

import argparse
import enum
import typing
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from utils.cli import as_script, cli_main
from utils.config import Config, MonitorSpec
from utils.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "config.md"
INTRO = """# Config reference

Generated from the schema (`utils/config/`) by `python -m tools.config_reference`; do not edit by hand.

Every key has a default; an unknown key, a wrong type or an impossible value is rejected with the key's
name. Set keys in a YAML file (`configs/*.yaml`; a recipe may start with `base: other.yaml` and give only
the keys that differ) or on the command line as `key.sub=value` (values are YAML:
`data.age_bounds=[30,58]`, `model.pretrained=false`). The resolved config is saved in every run as
`config.yaml`. A section that defaults to `null` (`augment.face_crop`, `trainer.ema`, …) is switched on by
giving it as a mapping; its keys are listed below it.
"""


def section_model(annotation: Any) -> Optional[type[BaseModel]]:
    """The config section class inside `annotation` (also `Optional[Section]`), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = section_model(arg)
        if found is not None:
            return found
    return None


def type_name(annotation: Any) -> str:
    """A short, readable type: `float`, `int | null`, `one of: ce, focal`, `[int, int]`, …"""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of: " + ", ".join(str(a) for a in args)
    if origin is typing.Union:
        names = [type_name(a) for a in args if a is not type(None)]
        return " \\| ".join(names) + (" \\| null" if type(None) in args else "")
    if origin is tuple:
        return "[" + ", ".join(type_name(a) for a in args) + "]"
    if origin is list:
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of: " + ", ".join(str(m.value) for m in annotation)
    return {Path: "path", MonitorSpec: "`min\\|max <metric>`"}.get(annotation, getattr(annotation, "__name__",
                                                                                   str(annotation)))


def default_text(field: Any) -> str:
    """The default as it would be written in YAML (relative paths as given)."""
    if field.default_factory is not None:
        value = field.default_factory()
        value = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, MonitorSpec):
        return str(value)
    if isinstance(value, Path):
        value = str(value)
    elif isinstance(value, tuple):
        value = list(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text.removesuffix("\n...").removesuffix(" ...")


def rows(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """(key, type, default, description) of every field, sections followed by their keys."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        nested = section_model(field.annotation)
        description = " ".join((field.description or "").split())
        if nested is not None and field.default_factory is not None:  # a section always present
            yield from rows(nested, f"{key}.")
            continue
        yield key, type_name(field.annotation), default_text(field), description
        if nested is not None and nested.__name__ != "StepConfig":
            yield from rows(nested, f"{key}.")


def render() -> str:
    """docs/config.md: one table per top-level section."""
    out = [INTRO]
    current = None
    for key, kind, default, description in rows(Config):
        top = key.split(".")[0] if "." in key else "run"
        if top != current:
            current = top
            title = Config.model_fields[top].description if top in Config.model_fields and "." in key else \
                "the run: its name, seed and where it is saved"
            out += [f"\n## `{top}` — {title}\n", "| key | type | default | description |", "|---|---|---|---|"]
        out.append(f"| `{key}` | {kind} | `{default}` | {description.replace('|', chr(92) + '|')} |")
    return "\n".join(out) + "\n"


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m tools.config_reference", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: docs/config.md")
    args = parser.parse_args(argv)
    atomic_write_text(args.out, render())
    print(f"{args.out}: {sum(1 for _ in rows(Config))} keys")
    return args.out


script = as_script(main)

if __name__ == "__main__":
    main()
