"""Packages import downward only: utils <- data_loader <- model <- trainer <- entry scripts."""
import ast

from conftest import ROOT

LAYERS = {"utils": 0, "data_loader": 1, "model": 2, "trainer": 3}


def upward_imports(root=ROOT):
    """(module, imported package) pairs where a package imports one above it."""
    found = []
    for package, rank in LAYERS.items():
        for path in sorted((root / package).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                for name in names:
                    top = name.split(".")[0]
                    if LAYERS.get(top, -1) > rank:
                        found.append((f"{package}/{path.name}", top))
    return found


def test_no_package_imports_upward():
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(tmp_path):
    (tmp_path / "utils").mkdir()
    (tmp_path / "utils" / "bad.py").write_text("from trainer.build import build_parts\n")
    for package in ("data_loader", "model", "trainer"):
        (tmp_path / package).mkdir()
    assert upward_imports(tmp_path) == [("utils/bad.py", "trainer")]
