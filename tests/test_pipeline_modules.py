"""The pipeline split by responsibility: imports inside conceptid/ point one way, the method
registry and the run defaults live once, the normaliser travels beside the model, evaluation
returns a result object the report takes (each alignment computed once), and plotting errors are
the package's own."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from conceptid import cli, config, evaluation, methods, plots, report, rundir, training
from conceptid.config import DEFAULTS, RunConfig
from conceptid.errors import PipelineError, PlotError
from conceptid.simulations import BenchmarkSpec, generate
from conceptid.simulations.errors import ConceptIDError
from conceptid.splits import Normaliser, splits

PACKAGE = Path(__file__).resolve().parents[1] / "conceptid"


# -- imports point one way ------------------------------------------------------------------------


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The modules of conceptid/ that ``path`` imports (anywhere in the file, lazily too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level > 1:
                continue
            base = node.module or ""
            if node.level == 1:  # from .x import y, from . import x
                names = [base] if base else [a.name for a in node.names]
                names = [f"conceptid.{n}" for n in names]
            else:
                names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if len(parts) >= 2 and parts[0] == "conceptid" and parts[1] in modules:
                out.add(parts[1])
    return out - {path.stem}


def test_the_import_graph_of_conceptid_is_acyclic():
    files = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    graph = {name: _imports(path, set(files)) for name, path in files.items()}
    assert graph["pipeline"] >= {"report", "evaluation", "training"}  # the walk sees imports
    assert "pipeline" in graph["cli"]  # lazy imports inside functions count too
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt) :] + [nxt] if nxt in trail else [node, nxt]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    # the report takes the evaluation's result; nothing below the pipeline imports it back
    for name, deps in graph.items():
        if name not in ("pipeline", "cli", "__main__"):
            assert "pipeline" not in deps, name
    assert "pipeline" not in graph["report"] and "report" not in graph["evaluation"]


def test_the_card_is_read_through_the_datasets_accessors():
    """No module of conceptid/ reads a raw card key or decides image-ness from the dtype."""
    for path in PACKAGE.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"card\[|card\.get\(", text), path.name
        assert not re.search(r"==\s*np\.uint8|ndim\s*==\s*4", text), path.name


# -- the registry and the defaults, once ----------------------------------------------------------


def test_methods_have_named_fields_and_one_registry():
    m = methods.METHODS["pooled"]
    assert m.assignment == "hungarian" and not m.vectors_only and not m.uses_epochs
    with pytest.raises(TypeError):
        methods.Method("pooled VAE", m.build, True)  # no unnamed booleans
    with pytest.raises(PipelineError, match="assignment"):
        methods.Method(label="x", build=m.build, assignment="best")
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.label = "other"
    assert cli.METHOD_NAMES == tuple(methods.METHODS)
    assert not set(methods.BENCHMARK_METHODS) & set(methods.METHODS)
    quad = generate(BenchmarkSpec(preset="quad", preset_args={"image_size": 16}, n_train=1,
                                  n_val=1, n_test=1))  # fmt: skip
    vectors_only = {k for k, v in methods.METHODS.items() if v.vectors_only}
    assert vectors_only == {"latent-flow", "manifold-mle"}
    on_request = {k for k, v in methods.METHODS.items() if not v.in_default}
    assert on_request == {"ivae"}
    assert methods.default_methods(quad) == [
        k for k in methods.METHODS if k not in vectors_only | on_request
    ]
    # before there is a dataset (run checks saved models before generating one): by its kind
    assert methods.default_methods(images=True) == methods.default_methods(quad)
    assert methods.default_methods(images=False) == [
        k for k in methods.METHODS if k not in on_request
    ]
    for both_or_neither in ({}, {"ds": quad, "images": True}):
        with pytest.raises(PipelineError, match="the dataset or images=, one of the two"):
            methods.default_methods(**both_or_neither)
    # a model is one method's by the closest registered class of its ancestry: an IVAE (a
    # subclass of PooledVAE) is an ivae model, not a pooled or beta-vae one
    from conceptid.models.estimators import IVAE, PooledVAE

    ivae, pooled = IVAE((4,), 2, 3), PooledVAE((4,), 2)
    assert methods.METHODS["ivae"].builds(ivae)
    assert not methods.METHODS["pooled"].builds(ivae)
    assert not methods.METHODS["beta-vae"].builds(ivae)
    assert methods.METHODS["pooled"].builds(pooled) and not methods.METHODS["ivae"].builds(pooled)

    class MyPooled(PooledVAE):  # a user's subclass of one method's class is still that method's
        pass

    assert methods.METHODS["pooled"].builds(MyPooled((4,), 2))


def test_the_benchmark_methods_build_from_a_dataset():
    from conceptid.models.estimators import LogRatioClassifier, TheoremMatchedVAE

    ds = generate(BenchmarkSpec(preset="random", preset_args={"m": 3, "p": 6}, n_train=20,
                                n_val=4, n_test=4, seed=2))  # fmt: skip
    tm = methods.BENCHMARK_METHODS["theorem-matched"].make(ds, 5)
    assert isinstance(tm, TheoremMatchedVAE)
    lr = methods.BENCHMARK_METHODS["log-ratio"].make(ds, 5)
    assert isinstance(lr, LogRatioClassifier) and lr.m == 3
    # class shares: the observational context and each single-target context, 20 rows each
    assert torch.allclose(lr.log_share, torch.zeros(4))


def test_run_defaults_live_once_and_the_command_line_reads_them():
    cfg = RunConfig(spec=None, out=Path("x"))
    for key in ("seed", "epochs", "batch_size", "lr", "device", "restarts", "n_generate",
                "check_method"):  # fmt: skip
        assert getattr(cfg, key) == getattr(DEFAULTS, key), key
    assert cfg.training() == {k: getattr(DEFAULTS, k) for k in config.REPORTED}
    parser = cli.build_parser()
    a = parser.parse_args(["run"])
    assert (a.epochs, a.batch_size, a.restarts, a.device, a.out, a.preset) == (
        DEFAULTS.epochs, DEFAULTS.batch_size, DEFAULTS.restarts, DEFAULTS.device, DEFAULTS.out,
        config.DEFAULT_RUN["preset"],
    )  # fmt: skip
    # --check-method is None until validate_run resolves it (to refuse it when given for data
    # without a ground truth); its help names the default
    assert a.check_method is None
    run_help = next(p for name, p in parser._subparsers._group_actions[0].choices.items()
                    if name == "run").format_help()  # fmt: skip
    assert f"(default: {DEFAULTS.check_method};" in " ".join(run_help.split())
    t = parser.parse_args(["train", "d", "--out", "r"])
    assert (t.seed, t.epochs, t.batch_size) == (DEFAULTS.seed, DEFAULTS.epochs, DEFAULTS.batch_size)
    assert parser.parse_args(["simulate", "--out", "d"]).preset == config.DEFAULT_PRESET
    assert cli.PRESET_NAMES is config.PRESET_NAMES


def test_run_config_refuses_unknown_choices_before_anything_runs(tmp_path):
    with pytest.raises(PipelineError, match="unknown preset 'nope'"):
        RunConfig(spec=BenchmarkSpec(preset="nope"), out=tmp_path / "r")
    with pytest.raises(PipelineError, match="check_method"):
        RunConfig(spec=None, out=tmp_path / "r", check_method="fuzzy")
    with pytest.raises(PipelineError, match="unknown methods"):
        RunConfig(spec=None, out=tmp_path / "r", methods=["magic"])
    assert not (tmp_path / "r").exists()


def test_the_reports_figures_are_the_ones_the_run_directory_removes():
    assert tuple(report.FIGURE_CAPTIONS) == rundir.FIGURES


# -- the normaliser beside the model; evaluation -> report ----------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny vector dataset and two methods trained on it into a run directory."""
    out = tmp_path_factory.mktemp("run") / "r"
    spec = BenchmarkSpec(preset="random", preset_args={"m": 3, "nuisance_dim": 1}, n_train=40,
                         n_val=10, n_test=10, seed=3)  # fmt: skip
    ds = rundir.ensure_data(spec, out, progress=False)
    trained = {name: training.train(name, ds, out, epochs=1, progress=False)
               for name in ("context-module", "pooled")}  # fmt: skip
    return ds, out, trained


def test_the_normaliser_round_trips_through_its_state():
    n = Normaliser(torch.tensor([1.0, -2.0]), torch.tensor([0.5, 3.0]))
    assert Normaliser.from_state(n.state()) == n
    assert Normaliser.from_state(None) == Normaliser(None, None) != n
    x = np.array([[1.0, 1.0]], dtype=np.float32)
    assert np.allclose(n.undo(x), [[1.5, 1.0]])
    with pytest.raises(PipelineError):
        Normaliser(torch.zeros(2), None)


def test_the_normaliser_is_saved_beside_the_model_and_read_back(tiny):
    ds, out, trained = tiny
    fitted, _ = splits(ds)
    for name, t in trained.items():
        assert t.normaliser == fitted and not t.normaliser.identity
        assert not hasattr(t.model, "_normaliser") and not hasattr(t.model, "_settings")
        final = out / "models" / name / "final.pt"
        state = torch.load(final, weights_only=False)
        assert Normaliser.from_state(state["normaliser"]) == fitted  # the format as before
        assert sorted(p.name for p in final.parent.iterdir()) == ["final.pt"]
        back = training.read_trained(final, ds)
        assert back.normaliser == fitted and back.settings == t.settings and not back.reused
        assert back.method == name and back.history == t.history
    # a model from a run directory written before: its normaliser is in its checkpoint state
    again = training.train("pooled", ds, out, epochs=1, progress=False)
    assert again.reused and again.normaliser == fitted
    # the plain forms the benchmarks use: (model, history) and (model, state)
    model, hist = training.train_method("pooled", ds, out, epochs=1, progress=False)
    assert isinstance(model, torch.nn.Module) and hist == trained["pooled"].history
    model, state = training.load_trained(out / "models" / "pooled" / "final.pt", ds)
    assert isinstance(model, torch.nn.Module) and state["method"] == "pooled"
    # samples come back in the data's units through the saved normaliser
    x = training.sample(trained["context-module"], ds, ["c0"], 50, seed=1)
    raw = training.generate_samples(trained["context-module"].model,
                                    torch.tensor([[True, False, False]] * 50), 1)  # fmt: skip
    assert x.dtype == np.float32
    assert np.allclose(x, raw * fitted.std.numpy() + fitted.mean.numpy(), atol=1e-6)


def test_the_evaluation_result_feeds_the_report_and_aligns_once(tiny, tmp_path, monkeypatch):
    ds, out, trained = tiny
    calls = []
    real = evaluation.align

    def counting(*args, **kwargs):
        calls.append(kwargs.get("assignment"))
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "align", counting)
    ev = evaluation.evaluate(ds, trained, n_generate=50)
    assert isinstance(ev, evaluation.Evaluation)
    assert calls == ["given", "hungarian"]  # once per method: context-module, pooled
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.metrics = {}
    assert set(ev.metrics["methods"]) == {"context-module", "pooled"}
    assert ev.metrics["methods"]["pooled"]["training"] == trained["pooled"].settings
    assert ev.alignments["pooled"].r2.tolist() == ev.metrics["methods"]["pooled"]["r2"]
    assert ev.histories == {k: t.history for k, t in trained.items()}
    # the evaluation is the same metrics the plain per-method measurement gives
    one = evaluation.evaluate_method("pooled", trained["pooled"].model, ds, 0, 50, ev.splits)
    assert json.dumps(one, sort_keys=True) == json.dumps(
        {k: v for k, v in ev.metrics["methods"]["pooled"].items() if k != "training"},
        sort_keys=True,
    )
    calls.clear()
    cfg = RunConfig(spec=ds.spec, out=tmp_path, n_generate=50, command="conceptid test")
    timings = {"data": 0.0, "check": 0.0, "evaluate": 0.0, "train": {"pooled": 1.0}}
    with pytest.raises(TypeError):
        report.write_report(ds, ev, timings, cfg)  # keyword-only
    path = report.write_report(ds=ds, evaluation=ev, timings=timings, config=cfg)
    assert calls == []  # the report draws the alignment the evaluation computed
    text = path.read_text()
    assert path == tmp_path / "report.md"
    assert "| pooled VAE |" in text and "| context-module VAE (paper-faithful baseline) |" in text
    assert "between 50 generated and the test samples" in text and "conceptid test" in text
    for name in ("samples_per_context", "concept_scatter", "r2_matrix", "training_curves"):
        assert (tmp_path / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name


def test_evaluate_refuses_nothing_to_evaluate(tiny):
    with pytest.raises(PipelineError, match="no trained model"):
        evaluation.evaluate(tiny[0], {})


# -- plotting errors ------------------------------------------------------------------------------


def test_a_plotting_error_is_a_conceptid_error_and_writes_nothing(tmp_path):
    plt = plots.pyplot()
    with pytest.raises(PlotError, match="cannot draw") as err:
        plots.training_curves(tmp_path / "t.png", {})  # matplotlib: no columns to draw
    assert isinstance(err.value, ConceptIDError) and type(err.value) is PlotError
    fig, ax = plt.subplots(figsize=(80000, 1))  # wider than any matplotlib renders
    ax.plot([0, 1], [0, 1])
    with pytest.raises(PlotError, match="too large"):
        plots.save_figure(fig, tmp_path / "wide.png")
    assert list(tmp_path.iterdir()) == [] and not plt.get_fignums()


def test_the_command_line_prints_a_plotting_error_as_one_line(tmp_path, capsys, monkeypatch):
    import matplotlib.figure

    data = tmp_path / "d"
    generate(BenchmarkSpec(preset="chain", preset_args={"m": 2}, n_train=5, n_val=1,
                           n_test=1)).save(data)  # fmt: skip

    def refuse(self, *args, **kwargs):
        raise ValueError("Image size of 70000x900 pixels is too large")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", refuse)
    assert cli.main(["inspect", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("conceptid inspect: error: cannot draw") and "too large" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (data / "samples_per_context.png").exists()


def test_training_curves_draw_only_the_final_objectives_training_loss():
    # found by a new user: a two-step fit's reconstruction loss (0.01) was drawn on one line
    # with its likelihood (3.7); the epoch that ends the warm-up trained the reconstruction
    # and was validated after the switch (a review: even when it is the first epoch)
    from conceptid.plots import _final_objective

    one = {"train_loss": [0.02, 3.9, 3.7], "val_loss": [4.1, 3.8, 3.6],
           "warm_up": [True, False, False]}  # fmt: skip
    got = _final_objective(one)
    assert np.isnan(got[0]) and got[1:] == [3.9, 3.7]
    # a history written before warm_up was recorded: read from the validation curve's gaps
    old = {"train_loss": [0.02, 0.01, 3.9, 3.7], "val_loss": [None, 4.1, 3.8, 3.6]}
    got = _final_objective(old)
    assert np.isnan(got[:2]).all() and got[2:] == [3.9, 3.7]
    plain = {"train_loss": [5.0, 4.0], "val_loss": [4.5, 4.2], "warm_up": [False, False]}
    assert _final_objective(plain) == [5.0, 4.0]
