"""One error base class under every refusal, and one validator for every count and rate."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

import conceptid
import conceptid.simulations as simulations
from conceptid.simulations.benchmark import DatasetError
from conceptid.simulations.errors import ConceptIDError, UsageError
from conceptid.simulations.validation import check_number, requirement

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("simulations", "identifiability", "models", "conceptid")


@pytest.mark.parametrize(
    "value, kw, expected",
    [
        (3, {}, 3),
        (np.int64(3), {}, 3),
        (np.uint8(1), {}, 1),
        (0, {"minimum": 0}, 0),
        (2.5, {"integer": False, "minimum": 0, "exclusive": True}, 2.5),
        (np.float32(0.5), {"integer": False, "minimum": 0, "exclusive": True}, 0.5),
        (7, {"integer": False}, 7.0),
        (8, {"minimum": 8}, 8),
    ],
)
def test_check_number_accepts_and_converts(value, kw, expected):
    out = check_number(value, "x", **kw)
    assert out == expected and type(out) is (int if kw.get("integer", True) else float)


@pytest.mark.parametrize(
    "value, kw, words",
    [
        (0, {}, "x must be a positive integer, got 0"),
        (-1, {"minimum": 0}, "x must be a non-negative integer, got -1"),
        (True, {}, "x must be a positive integer, got True"),
        (3.0, {}, "x must be a positive integer, got 3.0"),
        ("3", {}, "x must be a positive integer, got '3'"),
        (None, {}, "x must be a positive integer, got None"),
        (7, {"minimum": 8}, "x must be an integer >= 8, got 7"),
        (0.0, {"integer": False, "minimum": 0, "exclusive": True}, "positive finite number"),
        (math.nan, {"integer": False, "minimum": 0}, "non-negative finite number, got nan"),
        (math.inf, {"integer": False, "minimum": 0}, "non-negative finite number, got inf"),
        (False, {"integer": False, "minimum": 0}, "got False"),
        (1 + 2j, {"integer": False, "minimum": 0}, "got (1+2j)"),
    ],
)
def test_check_number_refuses_with_one_wording(value, kw, words):
    with pytest.raises(UsageError) as info:
        check_number(value, "x", **kw)
    assert words in str(info.value)


def test_check_number_raises_the_callers_error_type():
    with pytest.raises(DatasetError, match="n_train must be a non-negative integer"):
        check_number(-2, "n_train", minimum=0, error=DatasetError)


def test_requirement_words():
    assert requirement() == "a positive integer"
    assert requirement(minimum=0, exclusive=True) == "a positive integer"
    assert requirement(integer=False, minimum=0.5) == "a finite number >= 0.5"


def test_the_base_class_is_exported_and_usage_errors_derive_from_it():
    assert conceptid.ConceptIDError is simulations.ConceptIDError is ConceptIDError
    assert issubclass(UsageError, ConceptIDError) and issubclass(ConceptIDError, ValueError)


def _package_files():
    for pkg in PACKAGES:
        yield from sorted((ROOT / pkg).rglob("*.py"))


def test_every_error_class_of_the_package_derives_from_the_base_class():
    """Walk every class the package defines: any Exception subclass must be a ConceptIDError,
    so the command line can catch the package's own errors without a list of types."""
    import importlib

    found = []
    for f in _package_files():
        if f.name == "__main__.py":
            continue
        parts = f.relative_to(ROOT).with_suffix("").parts
        prefix = () if parts[0] == "conceptid" else ("conceptid",)  # installed as conceptid.<layer>
        module = importlib.import_module(".".join(prefix + parts))
        for name, obj in vars(module).items():
            if isinstance(obj, type) and issubclass(obj, BaseException):
                if obj.__module__ == module.__name__:
                    found.append(obj)
                    assert issubclass(obj, ConceptIDError), f"{module.__name__}.{name}"
    assert len(found) >= 12  # every layer defines its own error classes


def test_the_package_raises_no_plain_value_error():
    """A plain ValueError would escape the command line's one error path as a traceback; every
    refusal names a ConceptIDError subclass instead (UsageError for an argument out of range)."""
    offenders = []
    for f in _package_files():
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(exc, ast.Name) and exc.id == "ValueError":
                    offenders.append(f"{f.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
