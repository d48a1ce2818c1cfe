"""Inputs a new user gets wrong, each refused up front (one line, exit 2, nothing written), and
saved function mixings found from the directory a command runs in."""

from __future__ import annotations

import errno
import importlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from test_cli_hardening import refused  # one line on stderr, exit 2, nothing on stdout

from conceptid import cli
from conceptid.cli import main
from conceptid.simulations import build_preset
from conceptid.simulations.errors import ConceptIDError

ROOT = Path(__file__).resolve().parents[1]
MODULE = "conceptid_test_inputs_mix"  # a name no installed module has
PROC = Path("/proc")
on_proc = pytest.mark.skipif(not (PROC / "self").is_dir(), reason="needs Linux /proc")


def listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("inputs") / "ds"
    assert main(["simulate", "--preset", "chain", "--m", "2", "--n-per-context", "8",
                 "--out", str(out), "--quiet"]) == 0  # fmt: skip
    return out


# -- 1. a mixing saved as module:function, found in the current directory by every command -----


@pytest.fixture
def function_model(tmp_path, monkeypatch):
    """A directory holding MODULE.py (a mixing function) and model.json whose mixing is the
    reference ``MODULE:double``; sys.path and sys.modules are restored afterwards."""
    here = tmp_path / "here"
    here.mkdir()
    (here / f"{MODULE}.py").write_text(
        "import numpy as np\n\n\ndef double(e):\n    return np.concatenate([e, 2 * e], axis=1)\n"
    )
    importlib.invalidate_caches()
    model = build_preset("chain", np.random.default_rng(0), m=2)
    d = model.to_dict()
    d["mixing"] = {"kind": "function", "ref": f"{MODULE}:double", "input_dim": model.d}
    (here / "model.json").write_text(json.dumps(d))
    monkeypatch.setattr(sys, "path", list(sys.path))
    sys.modules.pop(MODULE, None)
    yield here, d
    sys.modules.pop(MODULE, None)


def test_a_function_mixing_is_found_from_the_current_directory(function_model, tmp_path,
                                                               monkeypatch, capsys):  # fmt: skip
    here, model = function_model
    path_before = list(sys.path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the module is not there: refused, naming it
    line = refused(["check", str(here / "model.json")], capsys)
    assert f"cannot import module '{MODULE}'" in line
    assert sys.path == path_before

    monkeypatch.chdir(here)
    assert main(["check", "model.json"]) == 0
    assert "c0" in capsys.readouterr().out
    spec = here / "spec.json"
    spec.write_text(json.dumps({"preset": None, "model": model, "n_train": 4, "n_val": 2,
                                "n_test": 2}))  # fmt: skip
    assert main(["simulate", "--spec", "spec.json", "--out", "ds", "--quiet"]) == 0
    assert main(["check", "ds"]) == 0
    assert main(["inspect", "ds", "--no-figure"]) == 0
    capsys.readouterr()
    assert Path(sys.modules[MODULE].__file__).resolve() == (here / f"{MODULE}.py").resolve()
    assert sys.path == path_before  # put there for the command only


def test_a_function_mixing_dataset_loads_without_importing_its_module(function_model, tmp_path,
                                                                     monkeypatch):  # fmt: skip
    """Loading checks the card's ground truth against the arrays without importing the user's
    mixing: only using the model (``ds.model``) needs the module."""
    from conceptid.simulations.benchmark import load_dataset

    here, _ = function_model
    monkeypatch.chdir(here)
    spec = here / "spec.json"
    spec.write_text(json.dumps({"preset": None, "model": json.loads((here / "model.json")
                                .read_text()), "n_train": 4, "n_val": 2, "n_test": 2}))  # fmt: skip
    assert main(["simulate", "--spec", "spec.json", "--out", "ds", "--quiet"]) == 0
    sys.modules.pop(MODULE, None)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    ds = load_dataset(here / "ds")
    assert MODULE not in sys.modules and ds.card["ground_truth"]["mixing"]["kind"] == "function"
    with pytest.raises(ConceptIDError, match=f"cannot import module '{MODULE}'"):
        _ = ds.model


def test_a_file_of_the_current_directory_never_shadows_a_module_the_command_imports(
    tmp_path, monkeypatch
):
    # found by review: with the current directory first on sys.path, a fractions.py there was
    # imported by check in place of the standard library's; now it comes last
    from importlib.machinery import PathFinder

    from conceptid.cli import _modules_of_cwd

    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.chdir(tmp_path)
    for name in ("fractions", "mine_xyz"):
        (tmp_path / f"{name}.py").write_text("raise RuntimeError('a file of the user')\n")
    with _modules_of_cwd():
        assert sys.path[-1] == str(tmp_path)
        found = {n: Path(PathFinder.find_spec(n, sys.path).origin).parent for n in
                 ("fractions", "mine_xyz")}  # fmt: skip
    assert found["fractions"] != tmp_path and found["mine_xyz"] == tmp_path
    assert str(tmp_path) not in sys.path


# -- 2. an output the system refuses although permissions allow it ------------------------------


def test_the_output_check_leaves_no_file(tmp_path):
    cli.check_out(str(tmp_path / "d"), "--out", directory=True, replace=True)
    cli.check_out(str(tmp_path), "--out", directory=True)
    cli.check_out(str(tmp_path / "f.png"), "--figure", directory=False)
    assert listing(tmp_path) == []


@on_proc
@pytest.mark.parametrize("command", [
    ["simulate", "--preset", "chain", "--out", "/proc/conceptid-xds"],
    ["import", "--digits", "--out", "/proc/conceptid-xds"],
    ["generate", "{T}/m", "--out", "/proc/conceptid-x.npy"],
])  # fmt: skip
def test_an_output_under_proc_is_refused_first(command, tmp_path, capsys):
    args = [a.replace("{T}", str(tmp_path)) for a in command]
    line = refused(args, capsys)
    assert f"--out {args[-1]}" in line  # the user's path, not a temporary file
    assert ".tmp-" not in line and "probe" not in line
    assert listing(tmp_path) == []


def _refuse_creating_in(monkeypatch, place: Path) -> None:
    """The system refuses to create a file in ``place`` (a read-only mount), whoever asks."""
    real = tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        if Path(kwargs.get("dir") or "") == place:
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*args, **kwargs)

    monkeypatch.setattr(cli.tempfile, "mkstemp", mkstemp)


def test_an_output_the_system_refuses_is_refused_first(tmp_path, monkeypatch, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    _refuse_creating_in(monkeypatch, ro)
    line = refused(["simulate", "--preset", "chain", "--out", str(ro / "d")], capsys)
    assert f"--out {ro / 'd'}" in line and "Read-only file system" in line
    line = refused(["run", "--preset", "chain", "--out", str(ro)], capsys)
    assert f"--out {ro}" in line and "Read-only file system" in line
    assert listing(tmp_path) == ["ro"]


# -- 3. and 4. inspect: the figure path checked before the report; --figure with --no-figure ----


@on_proc
def test_inspect_refuses_a_figure_under_proc_before_printing(dataset, capsys):
    line = refused(["inspect", str(dataset), "--figure", "/proc/conceptid-x.png"], capsys)
    assert "--figure /proc/conceptid-x.png" in line


def test_inspect_refuses_an_unwritable_figure_before_printing(dataset, tmp_path, monkeypatch,
                                                              capsys):  # fmt: skip
    _refuse_creating_in(monkeypatch, tmp_path)
    fig = tmp_path / "f.png"
    line = refused(["inspect", str(dataset), "--figure", str(fig)], capsys)  # stdout: empty
    assert f"--figure {fig}" in line and "Read-only file system" in line
    assert listing(tmp_path) == []


def test_inspect_refuses_figure_with_no_figure(dataset, tmp_path, capsys):
    fig = tmp_path / "y.png"
    line = refused(["inspect", str(dataset), "--no-figure", "--figure", str(fig)], capsys)
    assert "--figure and --no-figure cannot go together" in line
    assert listing(tmp_path) == []


# -- 5. an empty output path ---------------------------------------------------------------------


@pytest.mark.parametrize("command, flag", [
    (["simulate", "--preset", "chain", "--out", ""], "--out"),
    (["import", "--digits", "--out", ""], "--out"),
    (["run", "--preset", "chain", "--out", ""], "--out"),
    (["train", "{D}", "--out", ""], "--out"),
    (["generate", "{T}/m", "--out", ""], "--out"),
    (["evaluate", ""], "RUN"),
    (["inspect", "{D}", "--figure", ""], "--figure"),
])  # fmt: skip
def test_an_empty_output_path_is_refused_as_empty(command, flag, dataset, tmp_path, capsys):
    args = [a.replace("{D}", str(dataset)).replace("{T}", str(tmp_path)) for a in command]
    line = refused(args, capsys)
    assert line.endswith(f"error: {flag} is empty"), line
    assert listing(tmp_path) == []


# -- 6. --preset-arg values that start like JSON must parse ------------------------------------


@pytest.mark.parametrize("value", ["{bad", "[1,", '"open', ' {"a": }'])
def test_a_preset_arg_that_starts_like_json_must_parse(value, tmp_path, capsys):
    line = refused(["simulate", "--preset", "chain", "--preset-arg", f"mixing_args={value}",
                    "--out", str(tmp_path / "d")], capsys)  # fmt: skip
    assert "--preset-arg mixing_args" in line and "not valid JSON" in line
    assert "must be an object" not in line
    assert listing(tmp_path) == []
    line = refused(["check", "--preset", "chain", "--preset-arg", f"mixing_args={value}"], capsys)
    assert "--preset-arg mixing_args" in line and "not valid JSON" in line


def test_a_bare_preset_arg_is_still_a_string():
    kv = cli._parse_kv(["noise=laplace", "mixing=mlp", "m=3", 'held_out=[["c0", "c1"]]'])
    assert kv == {"noise": "laplace", "mixing": "mlp", "m": 3, "held_out": [["c0", "c1"]]}


# -- 7. a certificate piped into head ends quietly ---------------------------------------------


def test_a_certificate_ends_quietly_on_a_closed_pipe():
    script = ROOT / "proofs" / "certificates" / "cert_n2_identity_intervention.py"
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    proc.stdout.close()  # the reader is gone before the first line: every write fails
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 141, err.decode()
    assert b"Traceback" not in err and b"BrokenPipeError" not in err


# -- 8. the README's check timing says what was measured -----------------------------------------


def test_readme_check_timing_says_confirm_false():
    line = next(ln for ln in (ROOT / "README.md").read_text().splitlines() if "0.009 s" in ln)
    assert "confirm=False" in line
    assert "0.162 s" in line  # bench_check.py's default-confirm figure (docs/benchmarks.md)
    assert "0.162 s" in (ROOT / "docs" / "benchmarks.md").read_text()
