"""The docs cannot drift from the code: the config reference, the module map, the README's size."""

from test_layers import LAYERS

from helpers import ROOT
from utils.config import Config


def test_config_reference_is_generated_from_the_schema_and_current():
    from tools.config_reference import render

    assert (ROOT / "docs" / "config.md").read_text() == render(), \
        "docs/config.md is stale: run `make docs` (python -m tools.config_reference)"


def test_every_schema_field_has_a_description():
    from tools.config_reference import rows

    keys = list(rows(Config))
    assert len(keys) > 80
    assert [key for key, _, _, description in keys if len(description) < 8] == []


def test_design_map_lists_every_module():
    modules = {str(p.relative_to(ROOT)) for pkg in LAYERS for p in (ROOT / pkg).glob("*.py")
               if p.name != "__init__.py"}
    modules |= {p.name for p in ROOT.glob("*.py")}
    design = (ROOT / "docs" / "architecture.md").read_text().split("## Module map", 1)[1].split("\n## ", 1)[0]
    assert {m for m in modules if m not in design} == set()


def test_the_readme_is_a_front_door_whose_links_exist():
    import re

    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert links and [link for link in links if not (ROOT / link).exists()] == []


def test_the_index_of_tests_per_module_is_current():
    """tests/INDEX.md names each module's test files; a new module or test file makes it stale."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tests_index", ROOT / "tests" / "support" / "index.py")
    index = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(index)
    rendered = index.render()
    assert (ROOT / "tests" / "INDEX.md").read_text() == rendered, "run: python tests/support/index.py"
    assert all(f"`{m}`" in rendered for m in index.project_modules())
