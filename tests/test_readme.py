"""The README's examples run as written, in order, in one directory (keeps the documentation true).

Every ```python block and every ``conceptid`` line of the other blocks runs in document order in
one temporary directory holding a copy of ``examples/``, as a reader following the README would,
so two examples that write the same path collide here as they would for the reader. To keep this
fast, the command lines get ``--n-per-context 16``, ``--epochs 1`` and (``inspect``)
``--per-context 2``, put in or replacing what the line says, as the README states (``import``
takes ``--n-per-context`` only with ``--digits``: it is replaced where given, never added); the
``run``
and ``evaluate`` lines, which take minutes even so, are not run (tests/test_pipeline.py runs both
on tiny data), but the directories ``run`` writes are checked against every other line's. Lines
of other programs (``make``, ``.venv/bin/...``) are not run.
"""

import re
import shlex
import shutil
from pathlib import Path

import numpy as np

from conceptid.cli import main
from conceptid.simulations.benchmark import load_dataset

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEXT = README.read_text()
BLOCKS = [(m.group(1), m.group(2)) for m in re.finditer(r"```(\w*)\n(.*?)```", TEXT, re.S)]
PYTHON = [body for lang, body in BLOCKS if lang == "python"]
SHRINK = {"--n-per-context": ("simulate", "run", "import"), "--epochs": ("train", "run"),
          "--per-context": ("inspect",)}  # fmt: skip
REPLACE_ONLY = ("import",)  # commands whose SHRINK flags are replaced where given, never added
TINY = {"--n-per-context": "16", "--epochs": "1", "--per-context": "2"}
SKIPPED = ("run", "evaluate")


def commands() -> list[list[str]]:
    """The ``conceptid`` lines of the README's shell blocks, as argument lists, in order."""
    out = []
    for lang, body in BLOCKS:
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
    first_block = re.search(r"```\n(.*?)```", TEXT, re.S).group(1)
    assert first_block.splitlines()[0].startswith("make demo")
    assert first_block.splitlines()[1].startswith("make test")


def test_readme_has_examples_of_every_command():
    assert len(PYTHON) >= 3
    assert {argv[0] for argv in commands()} == {
        "run", "simulate", "import", "inspect", "check", "train", "evaluate", "generate"
    }  # fmt: skip


def test_no_two_lines_write_the_same_directory():
    """The lines not run (``run``) write directories no other line may touch."""
    written = []
    for argv in commands():
        if argv[0] in ("run", "simulate"):
            written.append(argv[argv.index("--out") + 1] if "--out" in argv else "runs/default")
    assert len(written) == len(set(written)), written
    others = {
        a for argv in commands() if argv[0] not in ("run", "simulate") for a in argv[1:]
    } | {m for block in PYTHON for m in re.findall(r'"([\w/.-]+)"', block)}  # fmt: skip
    runs = [w for argv, w in zip(commands(), written) if argv[0] == "run"]
    assert not set(runs) & others


def test_every_example_runs_in_order_in_one_directory(tmp_path, monkeypatch, capsys):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    ran = []
    for lang, body in BLOCKS:
        if lang == "python":
            exec(compile(body, "README.md python block", "exec"), namespace)
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
    assert ran.count("python") == len(PYTHON)
    assert sorted(set(ran)) == ["check", "generate", "import", "inspect", "python", "simulate",
                                "train"]  # fmt: skip

    # what the examples promise is on disk, and the Python examples' own results hold
    assert namespace["report"].identifiable
    assert namespace["train_x"].shape[0] > 0
    assert load_dataset("data/l4").card["spec"]["preset_args"]["mixing"] == "mlp"
    assert Path("data/quad/samples_per_context.png").read_bytes()[:4] == b"\x89PNG"
    for d in ("data/quad", "data/mlp6", "data/blocks", "data/custom", "data/l3"):
        load_dataset(d)
    assert Path("runs/l3-stages/models/manifold-mle/final.pt").is_file()
    samples = np.load("do_c0_c3.npy")
    assert samples.shape == (100, 10) and np.isfinite(samples).all()
    own = load_dataset("data/own")  # your own data: imported, no ground truth
    assert not own.has_ground_truth and own.context_names == ["obs", "dose", "light", "both"]
    assert np.array_equal(own.x, namespace["ds"].x)
    samples = np.load("own_dose_light.npy")
    assert samples.shape == (100, 8) and np.isfinite(samples).all()
    assert load_dataset("data/digits").card["source"]["kind"] == "morpho-digits"
