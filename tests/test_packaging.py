"""The install owns one name, and the layers import one way.

The folders ``simulations/``, ``identifiability/`` and ``models/`` install as
``conceptid.simulations``, ``conceptid.identifiability`` and ``conceptid.models`` (the build
backend's package-directory mapping). Outside the repository nothing else is importable, and the
two lower layers never load torch. ``.ci/package_smoke`` checks the same on a built wheel."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("name", ["models", "simulations", "identifiability"])
def test_no_top_level_layer_name_outside_the_repository(tmp_path, name):
    out = _run(f"import conceptid.{name}\nimport {name}", tmp_path)
    assert out.returncode != 0
    assert f"No module named '{name}'" in out.stderr


@pytest.mark.parametrize("layer", ["simulations", "identifiability"])
def test_the_lower_layers_never_import_torch(tmp_path, layer):
    code = (
        "import sys, importlib, pkgutil\n"
        f"import conceptid.{layer} as pkg\n"
        "for m in pkgutil.iter_modules(pkg.__path__):\n"
        "    importlib.import_module(pkg.__name__ + '.' + m.name)\n"
        "print(sorted(k for k in sys.modules if k == 'torch' or k.startswith('torch.')))\n"
    )
    out = _run(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_dependencies_are_ranges_and_the_licence_is_spdx():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = [d for d in meta["dependencies"] if "==" in d]
    assert pins == [], f"a library states ranges, not pins: {pins}"
    assert meta["license"] == "MIT" and (ROOT / "LICENSE").is_file()
    assert "MIT License" in (ROOT / "LICENSE").read_text()
