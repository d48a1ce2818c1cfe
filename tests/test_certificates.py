"""Runs every certificate of proofs/certificates: each fact of certify() must hold, and falsify()
(the same checks on a deliberately wrong claim) must reject at least one of them, so that no
certificate is one that cannot fail. One certificate is also run as a script.

The certificates import only numpy and sympy (they are an independent check of the mathematics),
so they are loaded by path, not as a package.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

CERT_DIR = Path(__file__).resolve().parents[1] / "proofs" / "certificates"
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
    assert len(MODULES) >= 13, [p.name for p in MODULES]


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
