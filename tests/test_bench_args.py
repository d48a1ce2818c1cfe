"""Every benchmark script refuses bad arguments before any work: one line naming what was wrong,
exit status 2 (argparse's ``ap.error``), and no data generated, model trained or file written.

The scripts are loaded by file path, with ``benchmarks/`` on ``sys.path`` as when they run as
``python benchmarks/bench_x.py`` (they import ``_args`` and each other from there); each one's
work functions are replaced by one that fails the test if called.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

#: per script, the functions (module attributes) its work starts with
WORK = {
    "bench_ae_precision": ("ensure_data",),
    "bench_check": ("timed",),
    "bench_cm_diagnosis": ("run",),
    "bench_composition": ("ensure_data", "train_method"),
    "bench_consistency": ("run_sweep",),
    "bench_digits": ("train_method", "splits"),  # morpho_digits' own checks run for --n
    "bench_flow_starts": ("ensure_data",),
    "bench_ladder": ("run",),
    "bench_masking": ("ContextModule", "_time_all"),
    "bench_moments": ("erdos_renyi", "best_times"),
    "bench_optimizer": ("ensure_data",),
    "bench_peel_robustness": ("generate",),
    "bench_quad": ("ensure_data", "train_method"),
    "bench_render": ("render_quad", "render_quad_loop"),
    "bench_sampling": ("erdos_renyi", "best_times"),
    "bench_snap": ("generate", "fit_unpeeled"),
    "bench_stage_inputs": ("ensure_data",),
    "bench_sweep": ("timed",),
}

LADDER = "L1, L2, L3, L4"
RUNGS_10 = "L1, L2, L3, L4, L3-10, L4-10, L3s, L4s, L3s-10, L4s-10"
OPS = "thinning, thickening, swelling, scale, shear, shift"
ON_CPU = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")

CASES = [
    ("bench_ae_precision", ["--n", "0"], "--n must be at least 1, got 0"),
    ("bench_ae_precision", ["--epochs", "-1"], "--epochs must be at least 1, got -1"),
    ("bench_ae_precision", ["--threads", "0"], "--threads must be at least 1, got 0"),
    ("bench_check", ["--limit", "0"], "--limit must be a number of seconds above 0 and at most"),
    ("bench_check", ["--limit", "nan"], "at most 1e6, got nan"),
    ("bench_check", ["--limit", "inf"], "at most 1e6, got inf"),
    ("bench_check", ["--repeats", "0"], "--repeats must be at least 1, got 0"),
    ("bench_cm_diagnosis", ["--rungs", "L1,L9"], f"--rungs: unknown rung(s) L9; known: {LADDER}"),
    ("bench_cm_diagnosis", ["--rungs", "L1,"], "--rungs takes names separated by commas, got"),
    ("bench_cm_diagnosis", ["--seeds", "0,a"], "--seeds takes integers separated by commas"),
    ("bench_cm_diagnosis", ["--seeds", "-1"], "--seeds must be non-negative, got '-1'"),
    ("bench_cm_diagnosis", ["--epochs", "0"], "--epochs must be at least 1, got 0"),
    ("bench_cm_diagnosis", ["--variants", "cm,vae"], "unknown variant(s) vae; known: cm, cm-ctx"),
    ("bench_composition", ["--epochs", "0"], "--epochs must be at least 1, got 0"),
    ("bench_composition", ["--n-test", "100"], "--n-test must be at least 500"),
    ("bench_composition", ["--seeds", "0,x"], "--seeds takes integers separated by commas"),
    ("bench_composition", ["--seeds", "-1"], "--seeds must be non-negative"),
    ("bench_composition", ["--methods", "context-flow,x"], "--methods: unknown method(s) x"),
    (
        "bench_composition",
        ["--methods", "latent-flow"],
        "latent-flow need(s) vector observations; this --preset quad makes images",
    ),
    ("bench_composition", ["--preset", "nope"], "unknown preset 'nope'"),
    ("bench_composition", ["--preset", "random", "--preset-arg", "m=0"], "m (number of nodes)"),
    ("bench_composition", ["--preset-arg", "m"], "--preset-arg takes KEY=JSON, got 'm'"),
    ("bench_composition", ["--flow-arg", "flow_activation=tanh"], "'tanh' is not JSON"),
    ("bench_composition", ["--flow-arg", 'flow_activation="tanh"'], "must be one of silu, prelu"),
    ("bench_composition", ["--flow-arg", "nope=1"], "takes no option 'nope'"),
    ("bench_composition", ["--flow-arg", "encoder=null"], "takes no option 'encoder'"),
    ("bench_composition", ["--flow-arg", 'refine_unpeeled="no"'], "takes true or false"),
    ("bench_composition", ["--flow-arg", "x=" + "7" * 5000], "x: the value cannot be read"),
    ("bench_composition", ["--flow-arg", "x=" + "[" * 10**5], "cannot be read: nested too"),
    ("bench_composition", ["--preset-arg", 'm={"a": 1, "a": 2}'], "gives the key 'a' twice"),
    ("bench_composition", ["--flow-arg", 'ae_activation="prelu"'], "images use the conv nets"),
    ("bench_composition", ["--flow-arg", "finetune_after=3"], "for vector data only"),
    (
        "bench_composition",
        ["--preset", "random", "--flow-arg", "finetune_after=90"],
        "at or past the budget of 30 epochs",
    ),
    ("bench_composition", ["--flow-arg", 'prior="sem"'], "prior is set by the method"),
    (
        "bench_composition",
        ["--preset", "random", "--preset-arg", "held_out=null"],
        "holds out no composition of interventions",
    ),
    (
        "bench_composition",
        ["--preset", "random", "--flow-arg", 'dag_weight="x"'],
        "dag_weight must be",
    ),
    (  # the flow arguments go to the ablation too, which cannot score per context
        "bench_composition",
        ["--preset", "random", "--flow-arg", "ae_gaussianity=0.002"],
        "--flow-arg, for context-flow-ablation: ae_gaussianity scores the latent context by",
    ),
    ("bench_consistency", ["--rungs", "L5"], f"--rungs: unknown rung(s) L5; known: {RUNGS_10}"),
    ("bench_consistency", ["--n", "500,x"], "--n takes integers separated by commas, got '500,x'"),
    ("bench_consistency", ["--n", "0,500"], "--n must be at least 1, got '0,500'"),
    ("bench_consistency", ["--seeds", "-1"], "--seeds must be non-negative, got '-1'"),
    ("bench_consistency", ["--methods", "pooled,nope"], "--methods: unknown method(s) nope"),
    ("bench_consistency", ["--sample-passes", "0"], "--sample-passes must be at least 1, got 0"),
    ("bench_consistency", ["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    ("bench_consistency", ["--workers", "0"], "--workers must be at least 1, got 0"),
    ("bench_consistency", ["--out", "FILE"], "--out: FILE is a file, not a sweep directory"),
    ("bench_consistency", ["--out", "DIR"], "--out: DIR is not empty and not a sweep directory"),
    ("bench_consistency", ["--rungs", "L1", "--seeds", "0,0"], "seeds repeat: [0, 0]"),
    ("bench_consistency", ["--rungs", "L1,L1"], "benchmark label 'L1' appears twice"),
    ("bench_digits", ["--seeds", "x"], "--seeds takes integers separated by commas, got 'x'"),
    ("bench_digits", ["--n", "0"], "--n must be at least 1, got 0"),
    ("bench_digits", ["--nuisance-dim", "-1"], "--nuisance-dim must be at least 0, got -1"),
    ("bench_digits", ["--block-sizes", "shift"], "--block-sizes takes OP=W separated by commas"),
    ("bench_digits", ["--block-sizes", "spin=2"], f"unknown operation 'spin'; known: {OPS}"),
    ("bench_digits", ["--block-sizes", "shift=2,shift=3"], "--block-sizes: shift given twice"),
    ("bench_digits", ["--block-sizes", "shift=two"], "shift: the width must be an integer"),
    ("bench_digits", ["--block-sizes", "shift=0"], "shift: the width must be at least 1, got 0"),
    ("bench_digits", ["--methods", "pooled,nope"], "--methods: unknown method(s) nope; known:"),
    ("bench_digits", ["--methods", "latent-flow"], "latent-flow need(s) vector observations"),
    ("bench_digits", ["--device", "nonsense"], "--device 'nonsense' is not a device"),
    pytest.param("bench_digits", ["--device", "cuda"], "cannot use CUDA", marks=ON_CPU),
    ("bench_digits", ["--figure", "s.xyz"], "--figure s.xyz: matplotlib cannot write .xyz files"),
    ("bench_digits", ["--n", "600"], "n_test = 600 > 540"),  # morpho_digits' check, no image
    ("bench_flow_starts", ["--seed", "-1"], "--seed must be at least 0, got -1"),
    ("bench_flow_starts", ["--n", "0"], "--n must be at least 1, got 0"),
    ("bench_flow_starts", ["--ae-epochs", "0"], "--ae-epochs must be at least 1, got 0"),
    ("bench_flow_starts", ["--flow-epochs", "0"], "--flow-epochs must be at least 1, got 0"),
    ("bench_flow_starts", ["--starts", "0"], "--starts must be at least 1, got 0"),
    ("bench_ladder", ["--rungs", "L5"], f"--rungs: unknown rung(s) L5; known: {LADDER}"),
    ("bench_ladder", ["--seeds", "1,,2"], "--seeds takes integers separated by commas"),
    ("bench_ladder", ["--epochs", "0"], "--epochs must be at least 1, got 0"),
    ("bench_ladder", ["--restarts", "0"], "--restarts must be at least 1, got 0"),
    ("bench_ladder", ["--estimators", "peel,vae"], "unknown estimator(s) vae; known: peel, flow"),
    ("bench_masking", ["--repeats", "0"], "--repeats must be at least 1, got 0"),
    ("bench_masking", ["--block", "0"], "--block must be at least 1, got 0"),
    ("bench_masking", ["--threads", "0"], "--threads must be at least 1, got 0"),
    ("bench_moments", ["--d", "200,3"], "--d must be at least 4, got '200,3'"),
    ("bench_moments", ["--d", "200,x"], "--d takes integers separated by commas, got '200,x'"),
    ("bench_moments", ["--repeats", "0"], "--repeats must be at least 1, got 0"),
    ("bench_optimizer", ["--steps", "0"], "--steps must be at least 1, got 0"),
    ("bench_snap", ["--m", "0"], "--m must be at least 1, got 0"),
    ("bench_snap", ["--m", "17"], "--m must be at most 16"),
    ("bench_snap", ["--m", "9", "--max-exhaustive", "9"], "peels all 9! orders"),
    ("bench_snap", ["--max-exhaustive", "-1"], "--max-exhaustive must be at least 0, got -1"),
    ("bench_snap", ["--repeats", "0"], "--repeats must be at least 1, got 0"),
    ("bench_snap", ["--threads", "0"], "--threads must be at least 1, got 0"),
    ("bench_optimizer", ["--flow-hidden", "0"], "--flow-hidden must be at least 1, got 0"),
    ("bench_peel_robustness", ["--seeds", "-2"], "--seeds must be non-negative, got '-2'"),
    ("bench_peel_robustness", ["--sizes", "0,abc"], "--sizes takes numbers separated by commas"),
    ("bench_peel_robustness", ["--sizes", "0,inf"], "--sizes must be finite, got '0,inf'"),
    ("bench_quad", ["--seeds", "a"], "--seeds takes integers separated by commas, got 'a'"),
    ("bench_quad", ["--epochs", "0"], "--epochs must be at least 1, got 0"),
    ("bench_quad", ["--n", "0"], "--n must be at least 1, got 0"),
    ("bench_quad", ["--methods", "pooled,nope"], "--methods: unknown method(s) nope; known:"),
    ("bench_quad", ["--methods", "manifold-mle"], "manifold-mle need(s) vector observations"),
    ("bench_render", ["--n", "3"], "--n must be at least 4, got 3"),
    ("bench_render", ["--size", "7"], "--size must be at least 8, got 7"),
    ("bench_render", ["--repeats", "0"], "--repeats must be at least 1, got 0"),
    ("bench_sampling", ["--d", "3"], "--d must be at least 4, got 3"),
    ("bench_sampling", ["--n", "0"], "--n must be at least 1, got 0"),
    ("bench_sampling", ["--repeats", "0"], "--repeats must be at least 1, got 0"),
    ("bench_stage_inputs", ["--n", "0"], "--n must be at least 1, got 0"),
    ("bench_stage_inputs", ["--repeats", "0"], "--repeats must be at least 1, got 0"),
    ("bench_stage_inputs", ["--threads", "0"], "--threads must be at least 1, got 0"),
    ("bench_sweep", ["--cells", "0"], "--cells must be at least 1, got 0"),
    ("bench_sweep", ["--epochs", "0"], "--epochs must be at least 1, got 0"),
]


@pytest.fixture(scope="module")
def load():
    """``load(name)``: the script ``benchmarks/<name>.py`` as a module (one per name)."""
    modules = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(BENCHMARKS))

        def load(name: str):
            if name not in modules:
                spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                modules[name] = module
            return modules[name]

        yield load


def test_every_script_is_covered():
    scripts = {p.stem for p in BENCHMARKS.glob("bench_*.py")}
    assert scripts == set(WORK)
    assert {c.values[0] if hasattr(c, "values") else c[0] for c in CASES} == set(WORK)


@pytest.mark.parametrize(("script", "argv", "message"), CASES)
def test_bad_arguments_are_refused_before_any_work(
    load, monkeypatch, capsys, tmp_path, script, argv, message
):
    bench = load(script)

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the arguments were checked")

    for name in WORK[script]:
        monkeypatch.setattr(bench, name, no_work)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # the suite keeps its one
    monkeypatch.chdir(tmp_path)  # relative defaults (--out, --figure) land here, if anywhere
    (tmp_path / "FILE").write_text("not a sweep\n")
    (tmp_path / "DIR").mkdir()
    (tmp_path / "DIR" / "notes.txt").write_text("mine\n")
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert ": error: " in err[-1] and message in err[-1]  # argparse's one line (after its usage)
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def test_composition_probe_finds_what_a_representation_carries(load):
    """bench_composition's probe: a concept that is a smooth function of the representation is
    found (R^2 near 1 on fresh rows), one independent of it is not (R^2 near 0)."""
    probe_r2 = load("bench_composition").probe_r2
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3000, 3, generator=g)
    c = torch.stack([torch.sin(x[:, 0]) + x[:, 1] ** 2, torch.randn(3000, generator=g)], 1)
    r2 = probe_r2(x[:2000], c[:2000], x[2000:], c[2000:], seed=0, steps=1500)
    assert r2[0] > 0.95
    assert abs(r2[1]) < 0.05


def test_check_peer_decides_as_the_exact_arithmetic(load):
    """bench_check's naive peer (ranks by cofactor expansion) is the package's Exact arithmetic
    with one method replaced: it must keep Exact's signature (a ``scale`` keyword added to
    ``rank`` once left the peer's process failing and the benchmark waiting forever), and
    decide the same ranks and the same verdicts, in its process as the benchmark runs it."""
    import numpy as np

    from conceptid.identifiability.linalg import Exact

    bench = load("bench_check")
    peer, exact = bench.LaplaceExact(), Exact()
    rng = np.random.default_rng(0)
    for shape, rank in (((3, 4), 2), ((4, 4), 4), ((2, 5), 1)):
        M = rng.integers(-3, 4, (shape[0], rank)) @ rng.integers(-3, 4, (rank, shape[1]))
        assert peer.rank(exact.mat(M), None) == exact.rank(exact.mat(M)) == np.linalg.matrix_rank(M)
    sec, identifiable, finished = bench.timed("laplace", 3, 60.0)
    assert finished and identifiable is True and sec < 60


def test_composition_prints_each_restarts_score_and_keeps_the_lowest(load, capsys):
    """bench_composition end to end at a tiny size with two restarts: it prints the restarts'
    selection scores (the validation NLL of each fit) and keeps the lowest, so a reader sees
    how clear the choice was; the per-seed and summary lines follow."""
    bench = load("bench_composition")
    threads = torch.get_num_threads()  # --threads sets this process's: restored for the others
    try:
        bench.main(["--preset", "random", "--preset-arg", "m=3", "--preset-arg", "p=6",
                    "--preset-arg", "nuisance_dim=0", "--n", "200", "--n-test", "500",
                    "--epochs", "3", "--flow-arg", "ae_epochs=1", "--methods", "context-flow",
                    "--threads", "1", "--seeds", "0", "--restarts", "2"])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out.splitlines()
    line = next(v for v in out if "restart scores" in v)
    head, kept = line.split("; kept restart ")
    scores = [float(v) for v in head.split("restart scores ")[1].split(", ")]
    assert len(scores) == 2 and all(np.isfinite(scores))
    assert int(kept) == int(np.argmin(scores))
    assert any(v.startswith("seed 0 context-flow ") and "composition SWD" in v for v in out)
    assert any("composition SWD over the same-law floor" in v for v in out)
