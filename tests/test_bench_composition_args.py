"""``benchmarks/bench_composition.py`` refuses bad arguments before any work: one line naming
what was wrong, exit status 2 (argparse's), and no dataset generated or model trained."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_composition.py"


@pytest.fixture(scope="module")
def bench():
    """The script as a module, imported as running it does (its folder on ``sys.path``)."""
    sys.path.insert(0, str(BENCH.parent))
    try:
        spec = importlib.util.spec_from_file_location("bench_composition", BENCH)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH.parent))
    return module


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "0"], "--epochs must be at least 1, got 0"),
        (["--n-test", "100"], "--n-test must be at least 500"),
        (["--seeds", "0,x"], "--seeds takes integers separated by commas, got '0,x'"),
        (["--seeds", "-1"], "--seeds must be non-negative"),
        (["--methods", "context-flow,x"], "--methods: unknown method(s) x; known: context-flow"),
        (["--methods", "latent-flow"], "latent-flow need vector observations; this --preset"),
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--preset", "random", "--preset-arg", "m=0"], "m (number of nodes) must be"),
        (["--preset-arg", "m"], "--preset-arg takes KEY=JSON, got 'm'"),
        (["--flow-arg", "flow_activation=tanh"], "'tanh' is not JSON"),
        (["--flow-arg", 'flow_activation="tanh"'], "flow_activation must be one of silu, prelu"),
        (["--flow-arg", "nope=1"], "unexpected keyword argument 'nope'"),
        (["--flow-arg", 'ae_activation="prelu"'], "images use the conv nets"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(bench, monkeypatch, capsys, argv, message):
    def no_work(*args, **kwargs):
        raise AssertionError("work started before the arguments were checked")

    monkeypatch.setattr(bench, "ensure_data", no_work)
    monkeypatch.setattr(bench, "train_method", no_work)
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert ": error: " in err[-1] and message in err[-1]  # argparse's one line (after its usage)
