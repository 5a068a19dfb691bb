"""Imports go downward only, checked module by module (function-level imports included):
utils <- data_loader <- model <- trainer <- predict <- experiments <- tools <- entry scripts."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT

LAYERS = {"utils": 0, "data_loader": 1, "model": 2, "trainer": 3, "predict": 4, "experiments": 5, "tools": 6}
ENTRY_SCRIPTS = ("train", "inference", "tune", "ensemble", "export")
ENTRY_RANK = 7


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name -> file of every module in the layered packages and of the entry scripts."""
    modules = {name: root / f"{name}.py" for name in ENTRY_SCRIPTS if (root / f"{name}.py").is_file()}
    for package in LAYERS:
        for path in sorted((root / package).glob("*.py")):
            modules[f"{package}.{path.stem}"] = path
    return modules


def imported_names(path: Path) -> list[str]:
    """Every module name a file imports, at any depth of the file (lazy imports in functions too);
    `from pkg import mod` counts as `pkg.mod`."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def top_level_packages(path: Path) -> set[str]:
    """The top packages a file imports at module level (not inside functions)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Project module -> the project modules it imports."""
    modules = project_modules(root)
    return {name: {n for n in imported_names(path) if n in modules and n != name} for name, path in modules.items()}


def rank(module: str) -> int:
    return LAYERS.get(module.split(".")[0], ENTRY_RANK)


def upward_imports(root: Path = ROOT) -> list[tuple[str, str]]:
    """(module, imported module) pairs where a module imports one from a higher layer."""
    return sorted((name, dep) for name, deps in import_graph(root).items() for dep in deps if rank(dep) > rank(name))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles between modules (each reported once, from its smallest member)."""
    found = []

    def walk(path: list[str]) -> None:
        for dep in sorted(graph.get(path[-1], ())):
            if dep == path[0]:
                found.append(path)
            elif dep > path[0] and dep not in path:
                walk(path + [dep])

    for start in sorted(graph):
        walk([start])
    return found


def closure(module: str, graph: dict[str, set[str]]) -> set[str]:
    """Every project module `module` reaches through imports (itself included)."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += graph.get(name, ())
    return seen


def test_no_module_imports_upward():
    assert upward_imports() == []


def test_no_import_cycles_between_modules():
    assert cycles(import_graph()) == []


def test_the_checks_see_an_upward_import_and_a_cycle(tmp_path):
    for package in LAYERS:
        (tmp_path / package).mkdir()
    (tmp_path / "utils" / "bad.py").write_text("def f():\n    from trainer import build\n")
    (tmp_path / "trainer" / "build.py").write_text("")
    (tmp_path / "model" / "a.py").write_text("import model.b\n")
    (tmp_path / "model" / "b.py").write_text("from model.a import x\n")
    assert upward_imports(tmp_path) == [("utils.bad", "trainer.build")]
    assert cycles(import_graph(tmp_path)) == [["model.a", "model.b"]]


def test_applying_a_fitted_ensemble_imports_no_training():
    graph = import_graph()
    for module in ("experiments.ensemble", "predict.fitted_ensemble", "ensemble"):
        reached = closure(module, graph)
        assert not {m for m in reached if m.startswith(("trainer.", "data_loader.", "model."))}, module
    training = {"trainer.trainer", "trainer.build", "trainer.lifecycle", "experiments.folds", "experiments.search"}
    for module in ("predict.predictor", "inference"):
        assert not closure(module, graph) & training, module


def test_predicting_with_onnx_reaches_no_module_that_imports_torch():
    graph = import_graph()
    reached = closure("predict.onnx_model", graph) | {"predict.onnx_model"}
    # torch at a module's top (a function may import it for a path the ONNX side never takes: DDP, saving)
    with_torch = {name for name, path in project_modules().items() if "torch" in top_level_packages(path)}
    assert "predict.predictor" in with_torch and not reached & with_torch, reached & with_torch
    assert {"data_loader.face_crop", "data_loader.transforms", "data_loader.seeding"} <= reached


@pytest.mark.slow  # a subprocess or a worker pool: make test only
def test_the_ensemble_fitter_runs_without_torch():
    code = ("import sys, experiments.ensemble, predict.fitted_ensemble; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'trainer', 'timm')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
