"""The README cannot drift from the code: config keys and the module map."""
import re

from test_layers import LAYERS

from conftest import ROOT
from utils.config import Config, section_fields

README = (ROOT / "README.md").read_text()


def schema_keys():
    """Every key of the config schema, dotted, down to the sections' own keys (`trainer.ema`, whose
    value is a small mapping, counts as one key)."""
    return [f"{top}.{key}" if section_fields([top]) else top
            for top in section_fields([]) for key in (section_fields([top]) or [None])]


def documented_keys():
    """Keys named in the first cell of the README's config reference table (`a` / `b` count as two)."""
    section = README.split("## Config reference", 1)[1].split("\n## ", 1)[0]
    keys = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names = re.findall(r"`([a-z_.]+)`", line.split("|")[1])
            section_name = names[0].rsplit(".", 1)[0] if "." in names[0] else ""
            keys |= {n if "." in n or not section_name else f"{section_name}.{n}" for n in names}
    return keys


def test_config_reference_names_every_key_and_no_other():
    schema = set(schema_keys())
    assert len(schema) > 40 and Config.model_fields
    assert schema - documented_keys() == set(), "keys missing from the README's config reference"
    assert documented_keys() - schema == set(), "README documents keys that do not exist"


def test_design_map_lists_every_module():
    modules = {str(p.relative_to(ROOT)) for pkg in LAYERS for p in (ROOT / pkg).glob("*.py")
               if p.name != "__init__.py"}
    modules |= {p.name for p in ROOT.glob("*.py")}
    design = (ROOT / "docs" / "architecture.md").read_text().split("## Module map", 1)[1].split("\n## ", 1)[0]
    assert {m for m in modules if m not in design} == set()
