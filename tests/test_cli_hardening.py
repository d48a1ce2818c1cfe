"""The command line: one line and exit 2 for every bad input, nothing written; help that helps."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import conceptid
from conceptid import cli
from conceptid.cli import build_parser, main
from conceptid.simulations.benchmark import BenchmarkSpec, load_dataset
from conceptid.simulations.resources import ENV

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "spec_chain.json"


def listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def refused(args: list[str], capsys, prog: str | None = None) -> str:
    """Run ``main(args)``: exit 2, exactly one stderr line ``PROG: error: ...``; return it."""
    rc = main(args)
    captured = capsys.readouterr()
    assert rc == 2, captured
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"{prog or 'conceptid ' + args[0]}: error: "), lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert captured.out == "", captured.out  # refused before any work: nothing printed
    return lines[0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A 2-concept chain dataset, and beside it one with no training rows."""
    root = tmp_path_factory.mktemp("hard")
    assert main(["simulate", "--preset", "chain", "--m", "2", "--n-per-context", "8",
                 "--out", str(root / "ds"), "--quiet"]) == 0  # fmt: skip
    spec = root / "no_train.json"
    spec.write_text(json.dumps({"preset": "chain", "preset_args": {"m": 2}, "n_train": 0,
                                "n_val": 2, "n_test": 2}))  # fmt: skip
    assert main(["simulate", "--spec", str(spec), "--out", str(root / "empty"), "--quiet"]) == 0
    return root


# -- every refusal: one line, exit 2, nothing written ------------------------------------------

CASES = [
    # (arguments, text the line must hold); {T}: the temporary directory, {D}: a dataset
    (["run", "--device", "cuda:99", "--out", "{T}/r"], "cuda:99"),
    (["run", "--device", "tpu", "--out", "{T}/r"], "'tpu' is not a device"),
    (["run", "--device", "meta", "--out", "{T}/r"], "only cpu, cuda, cuda:N and mps"),
    (["train", "{D}/ds", "--device", "quantum", "--out", "{T}/r"], "is not a device"),
    (["train", "{D}/ds", "--out", "{T}/r", "--epochs", "0"], "--epochs must be a positive"),
    (["run", "--epochs", "0", "--out", "{T}/r"], "--epochs must be a positive integer, got 0"),
    (["run", "--batch-size", "-5", "--out", "{T}/r"], "--batch-size must be a positive"),
    (["train", "{D}/ds", "--out", "{T}/r", "--restarts", "0"], "--restarts must be a positive"),
    (["train", "{D}/empty", "--out", "{T}/r"], "holds no train samples (n_train = 0)"),
    (["run", "--spec", "{D}/no_train.json", "--out", "{T}/r"], "n_train = 0"),
    (
        ["run", "--spec", "{D}/no_train.json", "--preset-arg", "m=3", "--out", "{T}/r"],
        "--preset-arg cannot be combined with --spec",
    ),
    (["run", "--methods", ",", "--out", "{T}/r"], "--methods ',' names no method"),
    (["run", "--methods", "pooled,magic", "--out", "{T}/r"], "unknown method 'magic'"),
    (["train", "{D}/ds", "--methods", "", "--out", "{T}/r"], "names no method"),
    (["simulate", "--out", "{T}/f.txt/sub"], "is a file, not a directory"),
    (["run", "--out", "{T}/f.txt", "--preset", "chain"], "f.txt is a file, not a directory"),
    (["train", "{D}/ds", "--out", "{T}/f.txt/deeper/still"], "is a file, not a directory"),
    (["simulate", "--out", "{T}/" + "n" * 300], "longer than 255 bytes"),
    (["simulate", "--out", "{T}/dangling"], "dangling is a broken symbolic link (to "),
    (["generate", "{T}/m", "--out", "{T}/dangling"], "dangling is a broken symbolic link"),
    (
        ["simulate", "--out", "{T}/d", "--image-size", "33"],
        "invalid choice: 33 (choose from 32, 64)",
    ),
    (["simulate", "--out", "{T}/d", "--preset-arg", "image_size=48"], "image size 48"),
    (["simulate", "--out", "{T}/d", "--n-per-context", "0"], "--n-per-context must be a positive"),
    (["simulate", "--out", "{T}/d", "--max-memory", "1e-5"], "needs about"),
    (["inspect", "{D}/ds", "--per-context", "0"], "--per-context must be a positive integer"),
    (["inspect", "{D}/ds", "--figure", "{T}/fig.jpg"], "--figure must be a .png file"),
    (["check", "{T}/binary.json"], "binary.json is not valid JSON"),
    (["check", "{T}/none.json"], "cannot read"),
    (["check", "{T}/semonly.json"], "a model dict needs at least the keys 'sem' and 'mixing'"),
    (["check", "{D}/ds", "--preset", "chain"], "--preset applies without SOURCE only"),
    (["check", "--preset", "chain", "--seed", "-4"], "--seed must be a non-negative integer"),
    (["check", "--preset", "chain", "--mixing", "math:sqrt"], "mixing math:sqrt failed on an"),
    (["generate", "{T}/m", "--n", "0", "--out", "{T}/x.npy"], "--n must be a positive integer"),
    (["generate", "{T}/m", "--out", "{T}/x.txt"], "--out must end in .npy or .png"),
    (["generate", "{D}/ds", "--out", "{T}/x.npy"], "ds holds no trained model (no final.pt)"),
    (["generate", "{D}/ds/x.npy", "--out", "{T}/y.npy"], "x.npy is not a trained model"),
    (["generate", "{T}/run/models/nope", "--out", "{T}/x.npy"], "nope does not exist"),
    (["evaluate", "{T}/nothing"], "is not a run directory"),
    # found by review: samples written over the dataset's own x.npy broke the run for good
    (["generate", "{T}/m", "--out", "{D}/ds/x.npy", "--overwrite"], "inside the dataset dir"),
    (["import", "--folders", "{T}", "--out", "{T}/ds"], "is inside --folders"),
    (["run", "--methods", "pooled,pooled", "--out", "{T}/r"], "names pooled more than once"),
    (["run", "--methods", "pooled,", "--out", "{T}/r"], "'pooled,' has an empty name"),
    (["run", "--device", "cpu:1", "--out", "{T}/r"], "the CPU is one device"),
    (["check", "--preset", "chain", "--preset-arg", "m=100000"], "--max-memory"),
    # check draws no samples: the only thing to ask for is a smaller model
    (["check", "--preset", "chain", "--max-memory", "1e-6"], "ask for a smaller model, or"),
    (["simulate", "--out", "{T}/d", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["simulate", "--n-val", "3"], "the following arguments are required: --out"),
]


@pytest.mark.parametrize("args, words", CASES, ids=[" ".join(c[0][:3]) for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tiny, tmp_path, capsys, args, words):
    (tmp_path / "f.txt").write_text("a file")
    (tmp_path / "binary.json").write_bytes(bytes(range(256)))
    (tmp_path / "semonly.json").write_text('{"sem": {}}')  # a model file without its mixing
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    before = listing(tmp_path), listing(tiny)
    argv = [a.replace("{T}", str(tmp_path)).replace("{D}", str(tiny)) for a in args]
    line = refused(argv, capsys)
    assert words in line
    assert (listing(tmp_path), listing(tiny)) == before


def test_generate_through_a_link_into_a_dataset_is_refused(tiny, tmp_path, capsys):
    link = tmp_path / "lnk.npy"
    link.symlink_to(tiny / "ds" / "x.npy")
    before = (tiny / "ds" / "x.npy").read_bytes()
    line = refused(["generate", str(tmp_path / "m"), "--out", str(link), "--overwrite"], capsys)
    assert f"leads to {(tiny / 'ds' / 'x.npy').resolve()}, inside the dataset directory" in line
    assert (tiny / "ds" / "x.npy").read_bytes() == before


def test_generate_beyond_memory_is_refused_before_any_sample(tiny, tmp_path, capsys):
    """The samples, their masks and the decoder's work are counted before any is drawn (by
    `sample`, the one check the command line and Python share)."""
    run = tmp_path / "run"
    assert main(["train", str(tiny / "ds"), "--out", str(run), "--methods", "pooled",
                 "--epochs", "1", "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    before = listing(tmp_path)
    line = refused(["generate", str(run / "models" / "pooled"), "--n", str(10**12), "--out",
                    str(tmp_path / "x.npy")], capsys)  # fmt: skip
    assert f"generating {10**12} samples needs about" in line and "--max-memory" in line
    assert listing(tmp_path) == before


def test_cuda_on_a_machine_without_it_is_refused_up_front(tmp_path, capsys):
    """The README's own example (``--device cuda``) on a CPU build: refused before any data."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    line = refused(["run", "--preset", "chain", "--device", "cuda", "--out", str(tmp_path / "r")],
                   capsys)  # fmt: skip
    assert "cannot use CUDA" in line and "--device cpu" in line
    assert listing(tmp_path) == []


def test_an_unwritable_out_is_refused_before_generating(tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root writes anywhere: let the permission check see what a user would
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != locked and real(p, mode))
    line = refused(["simulate", "--preset", "chain", "--out", str(locked / "d")], capsys)
    assert "permission denied" in line
    assert listing(tmp_path) == ["locked"]


def test_top_level_errors_name_the_program(capsys):
    assert "required: COMMAND" in refused([], capsys, prog="conceptid")
    assert "invalid choice: 'simualte'" in refused(["simualte"], capsys, prog="conceptid")


def test_max_memory_applies_only_while_the_command_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    line = refused(["simulate", "--preset", "chain", "--out", str(tmp_path / "d"),
                    "--max-memory", "0.00001"], capsys)  # fmt: skip
    assert "0.00001" not in line and "GiB" in line and "--max-memory" in line
    assert ENV not in os.environ
    assert main(["simulate", "--preset", "chain", "--m", "2", "--n-per-context", "4", "--out",
                 str(tmp_path / "d"), "--quiet", "--max-memory", "1"]) == 0  # fmt: skip
    assert ENV not in os.environ


def test_training_memory_is_checked_before_training(tiny, tmp_path, capsys):
    line = refused(["train", str(tiny / "ds"), "--out", str(tmp_path / "r"),
                    "--max-memory", "1e-9"], capsys)  # fmt: skip
    assert "training on" in line and "needs about" in line
    assert listing(tmp_path) == []


def test_ctrl_c_is_one_line_exit_130_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    """Interrupted while the dataset is being written: the temporary directory is removed."""
    real_save = np.save
    calls = []

    def interrupted_save(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second array of the dataset
            raise KeyboardInterrupt
        return real_save(*args, **kwargs)

    monkeypatch.setattr(np, "save", interrupted_save)
    rc = main(["simulate", "--preset", "chain", "--n-per-context", "4", "--out",
               str(tmp_path / "d"), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 130 and err == "conceptid simulate: interrupted\n"
    assert len(calls) == 2 and listing(tmp_path) == []


def _cli(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "conceptid.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)  # fmt: skip


def test_a_closed_pipe_ends_quietly():
    """``conceptid check ... | head``: the reader is gone before the report is printed."""
    proc = _cli("check", "--preset", "chain")
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert err == b"" and proc.returncode == 141


def _default_sigint() -> None:
    # a command started in the background by a shell without job control inherits SIGINT
    # ignored, and so would the CLI below (Python keeps an ignored SIGINT): the CLI started
    # as from a terminal, where Ctrl-C reaches it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sigint_in_a_real_process_is_one_line_and_130(tmp_path):
    proc = _cli("simulate", "--preset", "quad", "--n-per-context", "20000", "--out",
                str(tmp_path / "q"), "--max-memory", "100",
                preexec_fn=_default_sigint)  # fmt: skip
    first = proc.stderr.read(1)  # tqdm's first bytes: sampling has started, inside main()
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    err = (first + rest).decode()
    assert proc.returncode == 130, err
    assert err.rstrip().splitlines()[-1].endswith("conceptid simulate: interrupted")
    assert "Traceback" not in err and listing(tmp_path) == []


# -- help ----------------------------------------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_of_every_subcommand_has_help_text():
    parser = build_parser()
    subs = _subparsers(parser)
    assert set(subs) == {"simulate", "import", "inspect", "check", "run", "train", "evaluate",
                         "generate", "sweep"}  # fmt: skip
    for name, sub in [("conceptid", parser), *subs.items()]:
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help and action.help.strip(), f"{name} {action.option_strings}"


def _help(*args: str, capsys) -> str:
    assert main([*args, "--help"]) == 0
    return capsys.readouterr().out


def test_help_lists_methods_presets_and_defaults(capsys):
    for command in ("run", "train"):
        text = " ".join(_help(command, capsys=capsys).split())
        for method in cli.METHOD_NAMES:
            assert method in text
        assert "(default: 20)" in text and "(default: 128)" in text and "(default: cpu)" in text
    text = " ".join(_help("simulate", capsys=capsys).split())
    assert "chain, random, quad" in text and "(default: quad)" in text
    assert "{32,64}" in text
    text = _help("inspect", capsys=capsys)
    assert "(default: 8)" in text


def test_the_top_level_help_is_plain_text(capsys):
    text = _help(capsys=capsys)
    for markup in ("``", ":class:", ":func:", ":mod:", ":data:"):
        assert markup not in text
    assert "conceptid run" in text and "status 2" in text


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"conceptid {conceptid.__version__}\n"
    assert conceptid.__version__.count(".") == 2


def test_the_help_lists_agree_with_the_code():
    from conceptid.models.nets import IMAGE_SIZES
    from conceptid.pipeline import METHODS
    from conceptid.simulations.presets import PRESETS

    assert cli.METHOD_NAMES == tuple(METHODS)
    assert cli.IMAGE_SIZES == IMAGE_SIZES
    assert cli.PRESET_NAMES == tuple(PRESETS)


# -- the example spec file ----------------------------------------------------------------------


def test_the_example_spec_is_complete_and_simulate_accepts_it(tmp_path):
    data = json.loads(EXAMPLE.read_text())
    assert set(data) == set(BenchmarkSpec.__dataclass_fields__)  # every field, spelled out
    out = tmp_path / "d"
    assert main(["simulate", "--spec", str(EXAMPLE), "--out", str(out), "--quiet"]) == 0
    assert load_dataset(out).card["spec"] == BenchmarkSpec.from_json(EXAMPLE).to_dict()


def test_run_accepts_the_example_spec(tmp_path, monkeypatch):
    """Everything up to the pipeline (the pipeline itself is tested in test_pipeline.py)."""
    import conceptid.pipeline as pipeline

    seen = []
    monkeypatch.setattr(pipeline, "run", lambda cfg: seen.append(cfg))
    assert main(["run", "--spec", str(EXAMPLE), "--seed", "3", "--epochs", "2",
                 "--methods", "pooled,latent-flow", "--out", str(tmp_path / "r")]) == 0  # fmt: skip
    (cfg,) = seen
    expected = {**BenchmarkSpec.from_json(EXAMPLE).to_dict(), "seed": 3}
    assert cfg.spec.to_dict() == expected
    assert cfg.methods == ["pooled", "latent-flow"] and cfg.epochs == 2 and cfg.seed == 3
    assert listing(tmp_path) == []

    # without --seed the spec's own seed is used, not silently replaced by a default
    spec = tmp_path / "seven.json"
    spec.write_text(json.dumps({**json.loads(EXAMPLE.read_text()), "seed": 7}))
    assert main(["run", "--spec", str(spec), "--out", str(tmp_path / "r")]) == 0
    assert seen[-1].spec.seed == 7 and seen[-1].seed == 7


def test_inspect_figure_never_replaces_a_file_unasked(tiny, tmp_path, capsys):
    # found by review: `inspect --figure myphoto.png` overwrote the user's file
    photo = tmp_path / "myphoto.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\nmine")
    line = refused(["inspect", str(tiny / "ds"), "--figure", str(photo)], capsys)
    assert "exists; pass --overwrite" in line and photo.read_bytes().endswith(b"mine")
    assert main(["inspect", str(tiny / "ds"), "--figure", str(photo), "--overwrite"]) == 0
    capsys.readouterr()
    assert not photo.read_bytes().endswith(b"mine")


def test_run_refuses_an_out_that_is_a_dataset_before_reading_the_data(tiny, capsys):
    # found by review: `run --data D --out D` printed its first stage before refusing
    before = listing(tiny / "ds")
    line = refused(["run", "--data", str(tiny / "ds"), "--out", str(tiny / "ds")], capsys)
    assert "not a conceptid run directory" in line and listing(tiny / "ds") == before


def test_generate_and_evaluate_take_the_memory_limit_their_messages_offer():
    # found by review: generate's refusal advised --max-memory, which it did not take
    parser = build_parser()
    for argv in (["generate", "M", "--out", "o.npy", "--max-memory", "2"],
                 ["evaluate", "R", "--max-memory", "2"]):  # fmt: skip
        assert parser.parse_args(argv).max_memory == 2.0


def test_check_refuses_a_model_file_giving_a_key_twice(tmp_path, capsys):
    spec = json.loads(EXAMPLE.read_text())
    text = json.dumps(spec)[:-1] + ', "seed": 3, "seed": 4}'
    (tmp_path / "twice.json").write_text(text)
    line = refused(["check", str(tmp_path / "twice.json")], capsys)
    assert "gives the key 'seed' twice" in line
