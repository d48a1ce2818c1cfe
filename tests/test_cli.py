"""Tests for the conceptid command line (simulate, inspect)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conceptid.cli import main
from conceptid.simulations.benchmark import load_dataset

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def listing(d: Path) -> list[str]:
    """Every path under ``d`` (hidden temp directories included), relative, sorted."""
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


@pytest.fixture(scope="module")
def small_ds(tmp_path_factory) -> Path:
    """A small chain dataset (2 concepts: 4 contexts) for inspect tests."""
    out = tmp_path_factory.mktemp("cli") / "small"
    rc = main(
        [
            "simulate",
            "--preset",
            "chain",
            "--m",
            "2",
            "--n-per-context",
            "40",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    return out


def test_simulate_chain_writes_a_loadable_dataset(tmp_path, capsys):
    out = tmp_path / "d"
    rc = main(
        ["simulate", "--preset", "chain", "--n-per-context", "100", "--out", str(out), "--quiet"]
    )
    assert rc == 0
    captured = capsys.readouterr()
    assert f"wrote {out}" in captured.out
    assert captured.err == ""
    ds = load_dataset(out)
    assert ds.card["spec"]["preset"] == "chain"
    assert ds.card["spec"]["n_train"] == 100 and ds.card["spec"]["n_val"] == 25
    assert ds.mask("train", "obs").sum() == 100
    assert ds.mask("test", "obs").sum() == 25
    assert len(ds.card["concept_names"]) == 5  # the chain preset's default m
    assert listing(tmp_path) == ["d", *(f"d/{f}" for f in sorted(p.name for p in out.iterdir()))]


def test_simulate_options_reach_the_spec(tmp_path):
    out = tmp_path / "d"
    rc = main(
        [
            "simulate",
            "--preset",
            "chain",
            "--m",
            "3",
            "--mixing",
            "identity",
            "--nuisance-dim",
            "1",
            "--n-per-context",
            "8",
            "--n-val",
            "3",
            "--n-test",
            "2",
            "--seed",
            "5",
            "--preset-arg",
            "noise=laplace",
            "--preset-arg",
            'held_out=[["c0", "c2"]]',
            "--name",
            "mine",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    ds = load_dataset(out)
    spec = ds.card["spec"]
    assert spec["seed"] == 5 and (spec["n_train"], spec["n_val"], spec["n_test"]) == (8, 3, 2)
    assert spec["preset_args"] == {
        "m": 3,
        "mixing": "identity",
        "nuisance_dim": 1,
        "noise": "laplace",
        "held_out": [["c0", "c2"]],
    }
    assert ds.card["name"] == "mine"
    assert ds.context_names == ["obs", "do(c0)", "do(c1)", "do(c2)", "do(c0,c2)"]
    assert ds.x.shape == (4 * 13 + 2, 4)


def test_simulate_bit_generator(tmp_path, capsys):
    base = ["simulate", "--preset", "chain", "--m", "2", "--n-per-context", "6", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    assert main([*base, "--bit-generator", "sfc64", "--out", str(tmp_path / "b")]) == 0
    a, b = load_dataset(tmp_path / "a"), load_dataset(tmp_path / "b")
    assert "bit_generator" not in a.card["spec"] and b.card["spec"]["bit_generator"] == "sfc64"
    assert not np.array_equal(a.x, b.x)
    assert main([*base, "--bit-generator", "mt19937", "--out", str(tmp_path / "c")]) == 2
    assert not (tmp_path / "c").exists()
    assert "--bit-generator" in capsys.readouterr().err


def test_simulate_from_spec_file(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "preset": "random",
                "preset_args": {"m": 3},
                "n_train": 10,
                "n_val": 2,
                "n_test": 3,
                "seed": 1,
            }
        )
    )
    out = tmp_path / "d"
    assert main(["simulate", "--spec", str(spec), "--seed", "4", "--out", str(out), "--quiet"]) == 0
    card = load_dataset(out).card
    assert card["spec"]["preset"] == "random" and card["spec"]["seed"] == 4
    assert card["spec"]["n_train"] == 10


def test_simulate_overwrite_replaces(tmp_path):
    out = tmp_path / "d"
    args = [
        "simulate",
        "--preset",
        "chain",
        "--m",
        "2",
        "--n-per-context",
        "4",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main([*args, "--seed", "1"]) == 0
    first = load_dataset(out).card["content_hash"]
    assert main([*args, "--seed", "2", "--overwrite"]) == 0
    assert load_dataset(out).card["content_hash"] != first
    assert listing(tmp_path) == ["d", *(f"d/{f.name}" for f in sorted(out.iterdir()))]


def test_inspect_prints_summary_and_writes_png(small_ds, capsys):
    assert main(["inspect", str(small_ds)]) == 0
    out = capsys.readouterr().out
    for name in ("obs", "do(c0)", "do(c1)", "do(c0,c1)"):
        assert name in out
    assert "c0->c1" in out
    png = small_ds / "samples_per_context.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert f"wrote {png}" in out


def test_inspect_figure_path_and_no_figure(small_ds, tmp_path, capsys):
    fig = tmp_path / "figs" / "f.png"
    assert main(["inspect", str(small_ds), "--figure", str(fig), "--per-context", "2"]) == 0
    assert fig.read_bytes()[:8] == PNG_MAGIC
    capsys.readouterr()
    before = listing(tmp_path)
    assert main(["inspect", str(small_ds), "--no-figure"]) == 0
    assert listing(tmp_path) == before
    assert "do(c0,c1)" in capsys.readouterr().out
    # both at once: refused, nothing printed or written (it used to drop --figure silently)
    assert main(["inspect", str(small_ds), "--no-figure", "--figure", str(tmp_path / "g.png")]) == 2
    out, err = capsys.readouterr()
    assert not out and "--figure and --no-figure cannot go together" in err
    assert listing(tmp_path) == before


def test_simulate_quad_tiny_images(tmp_path, capsys):
    out = tmp_path / "q"
    rc = main(
        [
            "simulate",
            "--preset",
            "quad",
            "--image-size",
            "32",
            "--n-per-context",
            "20",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    ds = load_dataset(out)
    assert ds.x.dtype == np.uint8 and ds.x.shape[1:] == (32, 32, 3)
    assert len(ds.context_names) == 7 + 15
    assert ds.mask("train").sum() == 7 * 20
    assert ds.x.std() > 0  # not blank images
    assert "uint8 (32, 32, 3)" in capsys.readouterr().out
    # the figure of an image dataset with one sample per context: one column of images (it
    # used to index a squeezed grid of axes and crash)
    for n in ("1", "3"):
        fig = tmp_path / f"one_{n}.png"
        assert main(["inspect", str(out), "--per-context", n, "--figure", str(fig)]) == 0
        assert fig.read_bytes()[:8] == PNG_MAGIC
    capsys.readouterr()
    err = run_error(["inspect", str(out), "--per-context", "65", "--figure",
                     str(tmp_path / "big.png")], capsys)  # fmt: skip
    assert "--per-context must be at most 64" in err and not (tmp_path / "big.png").exists()


# -- bad input: exit status 2, one error line naming the problem, nothing written ---------------


def run_error(args: list[str], capsys) -> str:
    rc = main(args)
    captured = capsys.readouterr()
    assert rc == 2, captured
    assert captured.err.startswith(f"conceptid {args[0]}: error: "), captured.err
    assert len(captured.err.strip().splitlines()) == 1
    return captured.err


def test_existing_out_dir_without_overwrite(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    err = run_error(["simulate", "--preset", "chain", "--out", str(out), "--quiet"], capsys)
    assert str(out) in err and "--overwrite" in err
    assert listing(tmp_path) == ["d", "d/mine.txt"]
    assert (out / "mine.txt").read_text() == "keep"


def test_spec_file_with_unknown_keys(tmp_path, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"preset": "chain", "n_trian": 10}))
    out = tmp_path / "d"
    err = run_error(["simulate", "--spec", str(spec), "--out", str(out), "--quiet"], capsys)
    assert "n_trian" in err
    assert listing(tmp_path) == ["spec.json"]


def test_spec_file_with_invalid_json(tmp_path, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text("{nope")
    err = run_error(["simulate", "--spec", str(spec), "--out", str(tmp_path / "d")], capsys)
    assert "not valid JSON" in err and "spec.json" in err
    assert listing(tmp_path) == ["spec.json"]


@pytest.mark.parametrize(
    "extra, named",
    [
        (["--preset-arg", "colour=red"], "colour"),
        (["--preset-arg", "m"], "KEY=VALUE"),
        (["--preset-arg", "noise=cauchy"], "cauchy"),
        (["--mixing", "conv"], "conv"),
        (["--m", "3", "--preset-arg", "m=5"], "--m and --preset-arg m both set m"),
        (["--mixing", "linear", "--preset-arg", 'mixing="mlp"'], "both set mixing"),
        (["--preset-arg", "m=3", "--preset-arg", "m=4"], "--preset-arg m is given twice"),
        (["--image-size", "32"], "--image-size"),
        (["--n-per-context", "-3"], "--n-per-context must be a positive integer"),
        (["--n-per-context", "0"], "--n-per-context must be a positive integer"),
        (["--n-per-context", "abc"], "invalid integer value: 'abc'"),
        (["--n-val", "-1"], "--n-val must be a non-negative integer"),
        (["--seed", "-1"], "--seed must be a non-negative integer"),
        (["--m", "0"], "--m must be a positive integer"),
        (["--nuisance-dim", "2.5"], "invalid integer value: '2.5'"),
        (["--max-memory", "0"], "--max-memory must be a positive finite number"),
        (["--max-memory", "nan"], "--max-memory must be a positive finite number"),
    ],
)
def test_bad_chain_arguments(tmp_path, capsys, extra, named):
    out = tmp_path / "d"
    err = run_error(["simulate", "--preset", "chain", "--out", str(out), "--quiet", *extra], capsys)
    assert named in err
    assert listing(tmp_path) == []


def test_inspect_of_corrupted_dataset(small_ds, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(small_ds, bad)
    (bad / "samples_per_context.png").unlink(missing_ok=True)
    raw = bytearray((bad / "concepts.npy").read_bytes())
    raw[-1] ^= 0x01
    (bad / "concepts.npy").write_bytes(bytes(raw))
    before = listing(tmp_path)
    err = run_error(["inspect", str(bad)], capsys)
    assert "concepts.npy" in err
    assert listing(tmp_path) == before  # no figure written


def test_inspect_of_missing_dataset(tmp_path, capsys):
    err = run_error(["inspect", str(tmp_path / "none")], capsys)
    assert "not a dataset directory" in err


def test_missing_spec_file(tmp_path, capsys):
    err = run_error(
        ["simulate", "--spec", str(tmp_path / "nope.json"), "--out", str(tmp_path / "d")], capsys
    )
    assert "nope.json" in err


def test_unknown_mixing_arg(tmp_path, capsys):
    err = run_error(
        [
            "simulate",
            "--preset",
            "chain",
            "--mixing",
            "mlp",
            "--preset-arg",
            'mixing_args={"depth": 3}',
            "--out",
            str(tmp_path / "d"),
            "--quiet",
        ],
        capsys,
    )
    assert "depth" in err
    assert listing(tmp_path) == []


def test_spec_with_preset_options_is_not_silently_ignored(tmp_path, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"preset": "chain", "preset_args": {"m": 2}, "n_train": 4}))
    out = tmp_path / "d"
    err = run_error(["simulate", "--spec", str(spec), "--m", "4", "--out", str(out)], capsys)
    assert "--m cannot be combined with --spec" in err
    assert listing(tmp_path) == ["spec.json"]


def test_inspect_dataset_with_only_validation_rows(tmp_path, capsys):
    """A spec may ask for no training rows (the flag --n-per-context may not: it is refused as 0);
    such a dataset is written, and inspected with its figure of the rows it has."""
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"preset": "chain", "preset_args": {"m": 2}, "n_train": 0,
                                "n_val": 1, "n_test": 0}))  # fmt: skip
    out = tmp_path / "d"
    assert main(["simulate", "--spec", str(spec), "--out", str(out), "--quiet"]) == 0
    assert len(load_dataset(out).x) == 3  # one val row per training context
    assert main(["inspect", str(out)]) == 0
    assert (out / "samples_per_context.png").read_bytes()[:8] == PNG_MAGIC


def test_overwrite_refuses_what_the_package_did_not_write(tmp_path, capsys):
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "src" / "main.py").write_text("print('mine')")
    (proj / "notes.txt").write_text("keep")
    args = ["simulate", "--preset", "chain", "--m", "2", "--n-per-context", "4", "--quiet"]
    err = run_error([*args, "--out", str(proj), "--overwrite"], capsys)
    assert f"refusing to overwrite {proj}: not a conceptid dataset" in err
    assert "(contains notes.txt, src/)" in err
    assert listing(tmp_path) == ["proj", "proj/notes.txt", "proj/src", "proj/src/main.py"]
    file = tmp_path / "notes.md"
    file.write_text("keep")
    err = run_error([*args, "--out", str(file), "--overwrite"], capsys)
    assert f"--out {file} is a file, not a directory" in err
    assert file.read_text() == "keep" and "notes.md" in listing(tmp_path)
    assert not [p for p in listing(tmp_path) if p.startswith(".")]  # no hidden .NAME.old-*
    # a dataset is replaced, and a file of the user's inside it is kept
    data = tmp_path / "d"
    assert main([*args, "--out", str(data), "--seed", "1"]) == 0
    (data / "notes.txt").write_text("keep")
    assert main([*args, "--out", str(data), "--seed", "2", "--overwrite"]) == 0
    assert load_dataset(data).card["spec"]["seed"] == 2
    assert (data / "notes.txt").read_text() == "keep"


@pytest.mark.parametrize(
    "args, flag",
    [
        (["generate", "m", "--targets", "c0", "--out", "g.npy", "--targets", "c1"], "--targets"),
        (["run", "--epochs", "1", "--epochs=2"], "--epochs"),
        (["generate", "m", "--targets", "c0", "--targ", "c1", "--out", "g.npy"], "--targets"),
        (["inspect", "d", "--per-context", "2", "--per-context", "3"], "--per-context"),
    ],
)
def test_an_option_of_one_value_given_twice_is_refused(args, flag, tmp_path, capsys, monkeypatch):
    """argparse keeps the last value without a word (`--targets c0 --targets c1` would sample
    do(c1)); the command line refuses it in one line, before any work."""
    monkeypatch.chdir(tmp_path)
    err = run_error(args, capsys)
    assert f"{flag} is given twice; give it once" in err
    assert list(tmp_path.iterdir()) == []


def test_options_that_collect_values_may_repeat(tmp_path, capsys):
    out = tmp_path / "d"
    args = ["simulate", "--preset", "random", "--preset-arg", "m=3", "--preset-arg", "p=5",
            "--n-per-context", "10", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    assert load_dataset(out).model.sem.m == 3
