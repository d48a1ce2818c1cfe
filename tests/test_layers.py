"""The package's structure: every ``__all__`` lists each name once and every name resolves; the
modules of the two lower layers import one another without a circle; no public function shadows
a standard-library module."""

from __future__ import annotations

import ast
import collections
import importlib
import pkgutil
import sys
from pathlib import Path

import numpy as np
import pytest

from conceptid.simulations.graphs import find_cycle

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("conceptid", "conceptid.simulations", "conceptid.identifiability", "conceptid.models")
#: the layer folders that must import each other without a circle, and their package names
LOWER = {"simulations": "conceptid.simulations", "identifiability": "conceptid.identifiability"}


def _modules(package: str) -> list[str]:
    pkg = importlib.import_module(package)
    names = [package]
    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.ispkg and info.name != "__main__":  # __main__ runs the command line
            names.append(f"{package}.{info.name}")
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_every_all_lists_each_name_once_and_every_name_resolves(package):
    for name in _modules(package):
        module = sys.modules.get(name) or importlib.import_module(name)
        listed = getattr(module, "__all__", None)
        if listed is None:
            assert name != package, f"package {package} has no __all__"
            continue
        twice = sorted(n for n, c in collections.Counter(listed).items() if c > 1)
        assert not twice, f"{name}.__all__ lists {twice} more than once"
        missing = [n for n in listed if not hasattr(module, n)]
        assert not missing, f"{name}.__all__ lists {missing}, which {name} does not define"


def _import_time_imports(tree: ast.Module):
    """The import statements run when the module is imported: at module level, in class bodies,
    under ``if`` (``TYPE_CHECKING`` included), ``try`` and ``with``; not in function bodies
    (an import inside a function runs when it is called: the way to defer one deliberately)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            todo.extend(ast.iter_child_nodes(node))


def _import_graph() -> tuple[list[str], np.ndarray]:
    files = {}
    for folder, package in LOWER.items():
        for f in sorted((ROOT / folder).glob("*.py")):
            files[package if f.stem == "__init__" else f"{package}.{f.stem}"] = f
    names = sorted(files)
    index = {n: i for i, n in enumerate(names)}
    A = np.zeros((len(names), len(names)), dtype=bool)
    for name, f in files.items():
        package = name if f.stem == "__init__" else name.rsplit(".", 1)[0]
        for node in _import_time_imports(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                if t in index and t != name:
                    A[index[name], index[t]] = True
    return names, A


def test_the_lower_layers_import_graph_is_acyclic():
    names, A = _import_graph()
    assert len(names) > 20 and A.sum() > 20  # the walk found the modules and their imports
    sem = names.index("conceptid.simulations.sem")
    iv = names.index("conceptid.simulations.interventions")
    assert A[sem, iv] and not A[iv, sem]  # sem uses interventions, not the other way round
    cycle = find_cycle(A)
    assert cycle is None, "import circle: " + " -> ".join(names[i] for i in cycle)


def test_the_import_graph_walk_sees_type_checking_imports():
    tree = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sem import SEM\n"
        "def f():\n    from .render import x\n"
    )
    found = [n.module for n in _import_time_imports(tree)]
    assert sorted(found) == ["sem", "typing"]


def test_no_public_function_shadows_a_standard_library_module():
    stdlib = sys.stdlib_module_names
    for package in PACKAGES[1:3]:
        for name in _modules(package):
            module = importlib.import_module(name)
            clash = [
                n
                for n, v in vars(module).items()
                if n in stdlib and callable(v) and getattr(v, "__module__", None) == name
            ]
            assert not clash, f"{name} defines {clash}, which shadow standard-library modules"


def test_the_random_preset_keeps_its_name():
    from conceptid.simulations import presets

    assert presets.PRESETS["random"] is presets.random_graph_model
    assert not hasattr(presets, "random")
    rng = np.random.default_rng(0)
    model = presets.build_preset("random", rng, m=3)
    assert model.sem.m == 3
