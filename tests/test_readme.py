"""The README's and the documentation pages' examples run as written, in order (keeps them true).

For each document (README.md and every page of docs/), every ```python block and every
``conceptid`` line of its shell blocks (those without a language) runs in document order in one
fresh temporary directory holding a copy of ``examples/``, as a reader following that document
would, so two examples that write the same path collide here as they would for the reader.
Output blocks are marked ```text and are not run. To keep this fast, the command lines get
``--n-per-context 16``, ``--epochs 1`` and (``inspect``) ``--per-context 2``, put in or replacing
what the line says, as the documents state (``import`` takes ``--n-per-context`` only with
``--digits``: it is replaced where given, never added); the ``run``, ``evaluate`` and
``sweep`` lines, which take minutes even so, are not run (tests/test_pipeline.py and
tests/test_sweep.py run them on tiny data), but the directories ``run`` writes are checked
against every other line's. Lines of other programs
(``make``, ``.venv/bin/...``) are not run. What each document's examples promise is checked
after they ran.
"""

import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

from conceptid.cli import main
from conceptid.simulations.benchmark import load_dataset

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCUMENTS = [README] + sorted((ROOT / "docs").glob("*.md"))
SHRINK = {"--n-per-context": ("simulate", "run", "import"), "--epochs": ("train", "run"),
          "--per-context": ("inspect",)}  # fmt: skip
REPLACE_ONLY = ("import",)  # commands whose SHRINK flags are replaced where given, never added
TINY = {"--n-per-context": "16", "--epochs": "1", "--per-context": "2"}
SKIPPED = ("run", "evaluate", "sweep")
EVERY_COMMAND = {"run", "simulate", "import", "inspect", "check", "train", "evaluate", "generate",
                 "sweep"}  # fmt: skip
MAX_README_LINES = 350


def blocks(path: Path) -> list[tuple[str, str]]:
    """A document's fenced blocks, as (language, body), in order."""
    found = re.finditer(r"```(\w*)\n(.*?)```", path.read_text(), re.S)
    return [(m.group(1), m.group(2)) for m in found]


def python_blocks(path: Path) -> list[str]:
    return [body for lang, body in blocks(path) if lang == "python"]


def commands(path: Path) -> list[list[str]]:
    """The ``conceptid`` lines of a document's shell blocks, as argument lists, in order."""
    out = []
    for lang, body in blocks(path):
        if lang:
            continue
        for line in body.splitlines():
            if line.startswith("conceptid "):
                out.append(shlex.split(line, comments=True)[1:])
    return out


def shrunk(argv: list[str]) -> list[str]:
    argv = list(argv)
    for flag, commands_ in SHRINK.items():
        if argv[0] not in commands_:
            continue
        if flag in argv:
            argv[argv.index(flag) + 1] = TINY[flag]
        elif argv[0] not in REPLACE_ONLY:
            argv += [flag, TINY[flag]]
    if argv[0] in ("simulate", "train", "run"):
        argv.append("--quiet")
    return argv


def test_readme_opens_with_the_two_commands():
    first_block = re.search(r"```\n(.*?)```", README.read_text(), re.S).group(1)
    assert first_block.splitlines()[0].startswith("make demo")
    assert first_block.splitlines()[1].startswith("make test")


def test_readme_is_short():
    assert len(README.read_text().splitlines()) <= MAX_README_LINES


def test_readme_has_examples_of_every_command():
    assert len(python_blocks(README)) >= 3
    assert {argv[0] for argv in commands(README)} == EVERY_COMMAND


def test_the_docs_have_examples_of_every_command():
    assert {argv[0] for path in DOCUMENTS[1:] for argv in commands(path)} == EVERY_COMMAND
    assert (ROOT / "docs" / "cli.md") in DOCUMENTS  # the reference of every subcommand


def _label(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", DOCUMENTS, ids=_label)
def test_no_two_lines_write_the_same_directory(path):
    """The lines not run (``run``) write directories no other line of the document may touch."""
    written = []
    for argv in commands(path):
        if argv[0] in ("run", "simulate"):
            written.append(argv[argv.index("--out") + 1] if "--out" in argv else "runs/default")
    assert len(written) == len(set(written)), written
    others = {a for argv in commands(path) if argv[0] not in ("run", "simulate") for a in argv[1:]}
    others |= {m for block in python_blocks(path) for m in re.findall(r'"([\w/.-]+)"', block)}

    runs = [w for argv, w in zip(commands(path), written) if argv[0] == "run"]
    assert not set(runs) & others


def _check_readme(ns):
    assert ns["report"].identifiable
    assert ns["train_x"].shape[0] > 0
    assert load_dataset("data/l4").card["spec"]["preset_args"]["mixing"] == "mlp"
    assert Path("data/l3/samples_per_context.png").read_bytes()[:4] == b"\x89PNG"
    load_dataset("data/l3")
    assert Path("runs/l3-stages/models/context-flow/final.pt").is_file()
    samples = np.load("do_c0_c3.npy")
    assert samples.shape == (100, 10) and np.isfinite(samples).all()
    own = load_dataset("data/own")  # your own data: imported, no ground truth
    assert not own.has_ground_truth and own.context_names == ["obs", "dose", "light", "both"]
    assert np.array_equal(own.x, ns["ds"].x)
    assert Path("runs/own/models/pooled/final.pt").is_file()
    assert ns["c"].shape == (8, 4) and ns["x_new"].shape == (8, 32)


def _check_cli(ns):
    load_dataset("data/l3")
    assert Path("runs/l3-stages/models/manifold-mle/final.pt").is_file()
    samples = np.load("do_c0_c3.npy")
    assert samples.shape == (100, 10) and np.isfinite(samples).all()


def _check_simulations(ns):
    assert ns["train_x"].shape[0] > 0
    assert load_dataset("data/l4").card["spec"]["preset_args"]["mixing"] == "mlp"
    assert Path("data/quad/samples_per_context.png").read_bytes()[:4] == b"\x89PNG"
    for d in ("data/quad", "data/mlp6", "data/blocks", "data/custom"):
        load_dataset(d)


def _check_identifiability(ns):
    assert ns["report"].identifiable


def _check_data(ns):
    own = load_dataset("data/own")  # your own data: imported, no ground truth
    assert not own.has_ground_truth and own.context_names == ["obs", "dose", "light", "both"]
    assert np.array_equal(own.x, ns["ds"].x)
    samples = np.load("own_dose_light.npy")
    assert samples.shape == (100, 8) and np.isfinite(samples).all()
    assert load_dataset("data/digits").card["source"]["kind"] == "morpho-digits"


def _check_context_module(ns):
    assert ns["c"].shape == (8, 4) and ns["x_new"].shape == (8, 32)


def _check_sweeps(ns):
    rows = ns["result"].rows
    assert {r["n_train"] for r in rows} == {200, 400}
    assert all(0 <= r["mean"] <= 1 for r in rows if r["metric"] == "mean_r2")
    assert (
        Path("tiny-sweep/summary.md").is_file()
        and len(list(Path("tiny-sweep/cells").glob("*.json"))) == 2
    )


CHECKS = {
    "README.md": _check_readme,
    "docs/cli.md": _check_cli,
    "docs/sweeps.md": _check_sweeps,
    "docs/simulations.md": _check_simulations,
    "docs/identifiability.md": _check_identifiability,
    "docs/data.md": _check_data,
    "docs/context-module.md": _check_context_module,
}


def test_every_document_with_examples_is_checked():
    with_code = {_label(p) for p in DOCUMENTS if python_blocks(p) or commands(p)}
    assert with_code == set(CHECKS)


@pytest.mark.parametrize("path", DOCUMENTS, ids=_label)
def test_every_example_runs_in_order_in_one_directory(path, tmp_path, monkeypatch, capsys):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    ran = []
    for lang, body in blocks(path):
        if lang == "python":
            exec(compile(body, f"{_label(path)} python block", "exec"), namespace)
            ran.append("python")
            continue
        for line in body.splitlines() if not lang else []:
            if not line.startswith("conceptid "):
                continue
            argv = shrunk(shlex.split(line, comments=True)[1:])
            if argv[0] in SKIPPED:
                continue
            rc = main(argv)
            err = capsys.readouterr().err
            assert rc == 0, (line, err)
            ran.append(argv[0])
    assert ran.count("python") == len(python_blocks(path))
    expected = {argv[0] for argv in commands(path)} - set(SKIPPED)
    assert set(ran) - {"python"} == expected
    if path == README:
        assert sorted(set(ran)) == ["check", "generate", "import", "inspect", "python", "simulate",
                                    "train"]  # fmt: skip

    # what the examples promise is on disk, and the Python examples' own results hold
    check = CHECKS.get(_label(path))
    if check is not None:
        check(namespace)
