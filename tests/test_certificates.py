"""Runs every certificate of proofs/certificates: each fact of certify() must hold, and falsify()
(the same checks on a deliberately wrong claim) must reject at least one of them, so that no
certificate is one that cannot fail. One certificate is also run as a script.

The certificates import only sympy and the standard library (they are an independent check of the
mathematics), so they are loaded by path, not as a package; a test checks those imports. Two
documentation checks keep proofs/ usable: every relative link in its Markdown files resolves, and
no file of the repository points outside it (the setting lives in proofs/setting.md).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROOFS = ROOT / "proofs"
CERT_DIR = PROOFS / "certificates"
MODULES = sorted(p for p in CERT_DIR.glob("cert_*.py"))


def _load(path: Path):
    # certificates share proofs/certificates/_common.py, imported as a sibling module
    if str(CERT_DIR) not in sys.path:
        sys.path.insert(0, str(CERT_DIR))
    spec = importlib.util.spec_from_file_location(f"proofs_certificates_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_certificates_are_found():
    assert len(MODULES) >= 16, [p.name for p in MODULES]


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_certificate(path: Path):
    module = _load(path)
    facts = module.certify()
    assert facts, f"{path.name}: certify() checked nothing"
    failed = [name for name, ok in facts if not ok]
    assert not failed, f"{path.name}: facts that do not hold: {failed}"
    assert all(isinstance(ok, bool) for _, ok in facts)
    wrong = module.falsify()
    assert any(not ok for _, ok in wrong), f"{path.name}: falsify() rejected no wrong claim"


def test_certificate_runs_as_a_script():
    script = CERT_DIR / "cert_decoupling.py"
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS" in result.stdout and "FAIL" not in result.stdout


@pytest.mark.parametrize("path", [*MODULES, CERT_DIR / "_common.py"], ids=lambda p: p.stem)
def test_certificate_imports_only_sympy_and_the_standard_library(path: Path):
    allowed = set(sys.stdlib_module_names) | {"sympy", "_common", "__future__"}
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= allowed, f"{path.name} imports {sorted(imported - allowed)}"


def test_every_certificate_is_listed_in_the_proofs_readme():
    readme = (PROOFS / "README.md").read_text()
    missing = [p.name for p in MODULES if f"`{p.name}`" not in readme]
    assert not missing, missing


def test_proof_links_resolve():
    broken = []
    for md in sorted(PROOFS.glob("*.md")):
        for target in re.findall(r"\]\(([^)\s]+)\)", md.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor in the same file
            if not (md.parent / target.split("#")[0]).exists():
                broken.append(f"{md.name}: {target}")
    assert not broken, broken


def test_setting_names_every_assumption():
    text = (PROOFS / "setting.md").read_text()
    for name in ("A0", "A1", "A2", "A3", "A4", "A5", "A6", "A7", "A7+", "(R)"):
        assert f"**{name}**" in text, name


def test_no_file_points_outside_the_repository():
    # the names are split so that this file does not match itself
    needles = ("DES" + "IGN.md", "../" + "shared", "STY" + "LE.md")
    skip = {".venv", ".git", "build", "dist", "node_modules", "__pycache__"}
    hits = []
    for path in ROOT.rglob("*"):
        if skip & set(path.relative_to(ROOT).parts) or not path.is_file():
            continue
        if path.suffix not in {".py", ".md", ".toml", ".cfg", ".txt", ".yml", ".yaml"}:
            continue
        text = path.read_text(errors="replace")
        hits += [f"{path.relative_to(ROOT)}: {n}" for n in needles if n in text]
    assert not hits, hits
