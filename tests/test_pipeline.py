"""``conceptid run`` end to end, its determinism and resumption, and the stage subcommands."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re

import numpy as np
import pytest

from conceptid import pipeline, training
from conceptid.cli import main
from conceptid.config import RunConfig
from conceptid.errors import PipelineError
from conceptid.models.trainer import CheckpointError
from conceptid.simulations import BenchmarkSpec, load_dataset

TINY = ["--preset", "random", "--preset-arg", "m=3", "--preset-arg", "nuisance_dim=1",
        "--n-per-context", "60", "--epochs", "2", "--quiet"]  # fmt: skip
FIGURES = ["samples_per_context", "compositions", "concept_scatter", "r2_matrix",
           "training_curves"]  # fmt: skip
NUMBERS = ["mean_r2", "mcc", "concept_swd", "composition_swd", "bits_per_dim"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["run", *TINY, "--out", str(out)]) == 0
    (out.parent / "stdout.txt").write_text(printed.getvalue())
    return out


def test_every_stage_prints_how_long_it_took(tiny_run):
    # found by a docs audit: the evaluation printed no time, and the one under [5/5] was the
    # report's alone
    text = (tiny_run.parent / "stdout.txt").read_text()
    stages = re.split(r"^\[\d/5\] ", text, flags=re.M)[1:]
    defaults = [k for k, m in pipeline.METHODS.items() if m.in_default]
    assert len(stages) == 4 + len(defaults)  # [3/5] once per method
    for stage in stages:
        assert re.search(r"\(\d+\.\d s[;)]", stage), stage
    timings = json.loads((tiny_run / "timings.json").read_text())
    evaluate = next(s for s in stages if s.startswith("evaluate"))
    assert f"({timings['evaluate']:.1f} s)" in evaluate


def test_run_writes_every_promised_file_with_finite_metrics(tiny_run):
    for name in ["report.md", "metrics.json", "timings.json", "check.json", "check.txt"]:
        assert (tiny_run / name).is_file(), name
    for name in FIGURES:
        assert (tiny_run / "figures" / f"{name}.png").stat().st_size > 1000, name
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    # every method but those offered on request only (the iVAE-style VAE)
    assert set(metrics["methods"]) == {k for k, m in pipeline.METHODS.items() if m.in_default}
    assert "ivae" in pipeline.METHODS and "ivae" not in metrics["methods"]
    for method, m in metrics["methods"].items():
        for key in NUMBERS:
            assert isinstance(m[key], float) and math.isfinite(m[key]), (method, key)
        assert len(m["r2"]) == 3 and all(math.isfinite(v) for v in m["r2"])
        assert (tiny_run / "models" / method / "final.pt").is_file()
        assert not (tiny_run / "models" / method / "checkpoint.pt").exists()
    assert metrics["verdict"] == {"c0": "identifiable", "c1": "identifiable", "c2": "identifiable"}
    assert json.loads((tiny_run / "check.json").read_text())["method"] == "exact"  # the default
    report = (tiny_run / "report.md").read_text()
    assert report.startswith("# conceptid report: ")
    assert "identifiable" in report and "| pooled VAE |" in report
    assert not list(tiny_run.rglob(".*.tmp")) and not list(tiny_run.rglob(".*.png"))
    # what ran: each two-step fit's split of its epochs, and how few rows R^2 stands on
    assert (
        "Two-step fits: context module as exact prior (two-step): of the 2 epochs that ran "
        "(a budget of 2), 1 trained the autoencoder, 1 the prior's likelihood;" in report
    )
    assert "not fitted by likelihood" not in report
    assert "manifold MLE: of the" not in report  # one stage throughout: not a two-step fit
    rows = int(metrics["floors"]["test_rows"])
    assert f"R^2 and MCC are measured on the {rows * 4} test rows" in report  # 4 contexts


def test_the_report_says_when_a_two_step_fits_second_step_did_not_train():
    from types import SimpleNamespace

    from conceptid.methods import METHODS
    from conceptid.report import _schedule_notes

    ds = SimpleNamespace(is_image=False, block_sizes=(1, 1), nuisance_dim=0, x=np.zeros((2, 4)))
    model = METHODS["context-flow"].make(ds, 1)  # a budget of one epoch: all of it step 1
    fit = SimpleNamespace(model=model, settings={"epochs": 1}, label="two-step",
                          history={"stage": [0]})  # fmt: skip
    (note,) = [line for line in _schedule_notes(SimpleNamespace(trained={"f": fit})) if line]
    assert note == ("Two-step fits: two-step: of the 1 epochs that ran (a budget of 1), 1 "
                    "trained the autoencoder, 0 the prior's likelihood (its prior was not "
                    "fitted by likelihood: give more epochs).")  # fmt: skip
    # early stopping: what ran, not the budget; the fine-tune counted apart
    fit.history, fit.settings = {"stage": [0, 0, 1, 1, 2]}, {"epochs": 9}
    (note,) = [line for line in _schedule_notes(SimpleNamespace(trained={"f": fit})) if line]
    assert note.endswith("of the 5 epochs that ran (a budget of 9), 2 trained the autoencoder, "
                         "2 the prior's likelihood, 1 the joint fine-tune.")  # fmt: skip


def test_same_command_and_seed_give_the_same_metrics(tiny_run, tmp_path):
    other = tmp_path / "again"
    assert main(["run", *TINY, "--out", str(other)]) == 0
    assert (other / "metrics.json").read_bytes() == (tiny_run / "metrics.json").read_bytes()


def test_a_run_interrupted_after_training_resumes_at_evaluation(tiny_run, tmp_path, monkeypatch):
    import shutil

    run = tmp_path / "resumed"
    shutil.copytree(tiny_run / "data", run / "data")
    shutil.copytree(tiny_run / "models", run / "models")  # training had finished, nothing else
    shutil.copy(tiny_run / "run.json", run / "run.json")

    def no_training(*args, **kwargs):
        raise AssertionError("retrained a method whose final.pt exists")

    monkeypatch.setattr(training, "fit_restarts", no_training)
    assert main(["run", *TINY, "--out", str(run)]) == 0
    assert (run / "metrics.json").read_bytes() == (tiny_run / "metrics.json").read_bytes()
    assert (run / "report.md").is_file()


def test_stage_subcommands_share_the_run_directory(tmp_path, capsys):
    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["simulate", "--preset", "random", "--m", "3", "--n-per-context", "60",
                 "--out", str(data), "--quiet"]) == 0  # fmt: skip
    assert main(["train", str(data), "--out", str(run), "--methods", "context-module,pooled",
                 "--epochs", "2", "--quiet"]) == 0  # fmt: skip
    assert main(["evaluate", str(run), "--data", str(data)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["methods"]) == {"context-module", "pooled"}
    # without --data, the dataset train recorded: the report's commands name it, and the
    # report lists only the stages that ran here (no data stage)
    assert main(["evaluate", str(run)]) == 0
    report = (run / "report.md").read_text()
    assert report.startswith("# conceptid report: ")
    assert f"conceptid train {data} --out {run} " in report
    assert f"conceptid evaluate {run}\n" in report
    stages = next(line for line in report.splitlines() if line.startswith("- stage times"))
    assert "data" not in stages and "check" in stages and "evaluation" in stages
    samples = tmp_path / "s.npy"
    assert main(["generate", str(run / "models" / "context-module"), "--data", str(data),
                 "--targets", "c0,c2", "--n", "7", "--out", str(samples)]) == 0  # fmt: skip
    x = np.load(samples)
    p = np.load(data / "x.npy", mmap_mode="r").shape[1]
    assert x.shape == (7, p) and np.all(np.isfinite(x))
    capsys.readouterr()
    # bad input: a clear one-line error, exit status 2, nothing written
    bad = tmp_path / "bad.npy"
    assert main(["generate", str(run / "models" / "context-module"), "--data", str(data),
                 "--targets", "nope", "--out", str(bad)]) == 2  # fmt: skip
    assert "unknown intervention targets ['nope']" in capsys.readouterr().err
    assert not bad.exists()
    model = str(run / "models" / "context-module")
    for targets, said in [("c0,c0", "more than once: ['c0']"), ("c0,,c1", "an empty name"),
                          (",", "an empty name")]:  # fmt: skip
        assert main(["generate", model, "--data", str(data), "--targets", targets,
                     "--out", str(bad)]) == 2  # fmt: skip
        assert said in capsys.readouterr().err and not bad.exists()
    # an existing --out is the user's: refused without --overwrite, left as it was
    before = samples.read_bytes()
    assert main(["generate", model, "--data", str(data), "--out", str(samples)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert samples.read_bytes() == before
    assert main(["generate", model, "--data", str(data), "--n", "3", "--out", str(samples),
                 "--overwrite"]) == 0  # fmt: skip
    assert np.load(samples).shape == (3, p)
    capsys.readouterr()
    # a concept no training context intervenes on has no learned intervention law (the card
    # relabelled after the model was read: read_trained itself refuses a relabelled dataset)
    ds = load_dataset(data)
    trained = training.read_trained(run / "models" / "context-module" / "final.pt", ds)
    ds.card["contexts"] = [{**c, "held_out": c["held_out"] or c["targets"] == ["c2"]}
                           for c in ds.card["contexts"]]  # fmt: skip
    with pytest.raises(CheckpointError, match="labelled otherwise"):
        training.read_trained(run / "models" / "context-module" / "final.pt", ds)
    with pytest.raises(PipelineError, match=r"no training context intervenes on \['c2'\]"):
        training.sample(trained, ds, ["c0", "c2"], 4)
    assert training.sample(trained, ds, ["c0", "c1"], 4).shape == (4, p)
    assert main(["train", str(data), "--out", str(run), "--methods", "magic"]) == 2
    assert "unknown method 'magic'" in capsys.readouterr().err
    final = run / "models" / "pooled" / "final.pt"
    final.write_bytes(final.read_bytes()[:64])
    assert main(["evaluate", str(run), "--data", str(data)]) == 2
    assert "corrupted" in capsys.readouterr().err


def test_data_without_test_rows_trains_but_is_not_evaluated(tmp_path, capsys):
    """Training needs no test rows; the evaluation (and so a run) refuses data without them
    before any work, naming the count, instead of failing inside an alignment."""
    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["simulate", "--preset", "chain", "--m", "3", "--n-per-context", "10",
                 "--n-test", "0", "--out", str(data), "--quiet"]) == 0  # fmt: skip
    assert main(["train", str(data), "--out", str(run), "--methods", "pooled", "--epochs", "1",
                 "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr()
    assert "hold 0 test samples" in err.err and "[4/5]" not in err.out
    assert not (run / "metrics.json").exists() and not (run / "report.md").exists()
    assert main(["run", "--data", str(data), "--out", str(tmp_path / "r2"), "--epochs", "1",
                 "--quiet"]) == 2  # fmt: skip
    assert "hold 0 test samples" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()
    with pytest.raises(PipelineError, match="hold 0 test samples"):  # Python: nothing copied
        pipeline.run(RunConfig(spec=None, data=data, out=tmp_path / "r2", epochs=1,
                               progress=False))  # fmt: skip
    assert not (tmp_path / "r2").exists()
    # a benchmark whose two training contexts get one test sample each: refused before its data
    assert main(["run", "--preset", "chain", "--preset-arg", "m=1", "--n-per-context", "4",
                 "--out", str(tmp_path / "r3"), "--epochs", "1", "--quiet"]) == 2  # fmt: skip
    assert "hold 2 test samples" in capsys.readouterr().err
    assert not (tmp_path / "r3").exists()
    spec = BenchmarkSpec(preset="chain", preset_args={"m": 1}, n_train=4, n_val=1, n_test=1)
    with pytest.raises(PipelineError, match="hold 2 test samples"):
        pipeline.run(RunConfig(spec=spec, out=tmp_path / "r4", epochs=1, progress=False))
    assert not (tmp_path / "r4").exists()


def test_a_trained_run_remembers_its_dataset_and_refuses_another(tmp_path, capsys,
                                                                 monkeypatch):  # fmt: skip
    """`train DATA --out RUN` records DATA in run.json: `evaluate` and `generate` find it without
    --data. Training or running another dataset into the run is refused before anything is
    written; a dataset moved away or replaced is named, with the way out."""
    data, other, run = tmp_path / "data", tmp_path / "other", tmp_path / "run"
    for out, seed in ((data, "0"), (other, "1")):
        assert main(["simulate", "--preset", "random", "--m", "3", "--n-per-context", "40",
                     "--seed", seed, "--out", str(out), "--quiet"]) == 0  # fmt: skip
    assert main(["train", str(data), "--out", str(run), "--methods", "pooled", "--epochs", "1",
                 "--quiet"]) == 0  # fmt: skip
    marker = json.loads((run / "run.json").read_text())
    assert marker["format"] == "conceptid.run/1"
    assert marker["data"]["path"] == str(data.resolve())
    assert main(["evaluate", str(run)]) == 0
    assert set(json.loads((run / "metrics.json").read_text())["methods"]) == {"pooled"}
    samples = tmp_path / "s.npy"
    assert main(["generate", str(run / "models" / "pooled"), "--n", "3", "--out",
                 str(samples), "--overwrite"]) == 0  # fmt: skip
    assert np.load(samples).shape[0] == 3
    monkeypatch.chdir(run / "models")  # a relative MODEL still finds its run
    assert main(["generate", "pooled", "--n", "2", "--out", str(samples), "--overwrite"]) == 0
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["generate", str(run), "--out", str(samples)]) == 2  # the run, not a model
    assert f"its trained models: {run}/models/pooled" in capsys.readouterr().err
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert main(["train", str(other), "--out", str(run), "--methods", "latent-flow",
                 "--epochs", "1", "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert f"{run} was trained on another dataset, {data.resolve()}" in err
    assert len(err.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert main(["run", "--data", str(other), "--out", str(run), "--quiet"]) == 2
    assert f"{run} was trained on another dataset" in capsys.readouterr().err
    assert main(["run", "--preset", "random", "--out", str(run), "--quiet"]) == 2
    assert f"the models of {run} were trained on {data.resolve()}" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    moved = tmp_path / "moved"
    data.rename(moved)
    assert main(["evaluate", str(run)]) == 2
    assert f"trained on {data.resolve()}, which no longer exists" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--data", str(moved)]) == 0
    other.rename(data)  # another dataset where the recorded one was
    assert main(["generate", str(run / "models" / "pooled"), "--out", str(samples),
                 "--overwrite"]) == 2  # fmt: skip
    assert "now holds another dataset" in capsys.readouterr().err


def test_the_dataset_is_recorded_before_the_first_fit(tmp_path, capsys, monkeypatch):
    """A `train` killed during its first fit has already recorded its dataset, so the run
    still refuses another; a `train` refused for a saved model of other settings writes
    nothing, the record included."""
    from conceptid import training

    data, other, run = tmp_path / "data", tmp_path / "other", tmp_path / "run"
    for out, seed in ((data, "0"), (other, "1")):
        assert main(["simulate", "--preset", "random", "--m", "3", "--n-per-context", "40",
                     "--seed", seed, "--out", str(out), "--quiet"]) == 0  # fmt: skip

    class Killed(Exception):
        pass

    def killed(*args, **kwargs):
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(training, "fit_restarts", killed)
        with pytest.raises(Killed):
            main(["train", str(data), "--out", str(run), "--methods", "pooled", "--epochs",
                  "1", "--quiet"])  # fmt: skip
    assert json.loads((run / "run.json").read_text())["data"]["path"] == str(data.resolve())
    assert not (run / "models" / "pooled" / "final.pt").exists()
    assert main(["train", str(other), "--out", str(run), "--methods", "pooled", "--epochs", "1",
                 "--quiet"]) == 2  # fmt: skip
    assert f"{run} was trained on another dataset" in capsys.readouterr().err
    fresh = tmp_path / "fresh"
    assert main(["train", str(data), "--out", str(fresh), "--methods", "pooled", "--epochs",
                 "1", "--quiet"]) == 0  # fmt: skip
    before = (fresh / "run.json").read_bytes()
    assert main(["train", str(data), "--out", str(fresh), "--methods", "pooled,latent-flow",
                 "--epochs", "2", "--quiet"]) == 2  # pooled: trained for 1 epoch  # fmt: skip
    assert "was trained under other settings: epochs 1 -> 2" in capsys.readouterr().err
    assert (fresh / "run.json").read_bytes() == before
    assert not (fresh / "models" / "latent-flow").exists()


def test_training_into_a_run_with_its_own_data_needs_that_data(tmp_path, capsys):
    """A run made by `run` holds its dataset in RUN/data; `train` of another dataset into it is
    refused, of the same one accepted."""
    run = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "--preset",
                "random",
                "--preset-arg",
                "m=3",
                "--n-per-context",
                "30",
                "--epochs",
                "1",
                "--methods",
                "pooled",
                "--out",
                str(run),
                "--quiet",
            ]
        )
        == 0
    )
    other = tmp_path / "other"
    assert main(["simulate", "--preset", "random", "--m", "3", "--n-per-context", "30",
                 "--seed", "5", "--out", str(other), "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["train", str(other), "--out", str(run), "--methods", "pooled", "--quiet"]) == 2
    assert f"{run} holds another dataset in {run / 'data'}" in capsys.readouterr().err
    assert main(["train", str(run / "data"), "--out", str(run), "--methods", "pooled",
                 "--epochs", "1", "--quiet"]) == 0  # fmt: skip
    assert "data" not in json.loads((run / "run.json").read_text())  # its own copy: no record


def test_run_on_images_writes_image_figures(tmp_path):
    out = tmp_path / "quad"
    args = ["--n-per-context", "16", "--epochs", "1", "--methods", "context-module,pooled"]
    assert main(["run", "--preset", "quad", *args, "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["verdict"]["color"] == "not identifiable"
    for m in metrics["methods"].values():
        assert all(math.isfinite(m[k]) for k in NUMBERS)
    for name in FIGURES:
        assert (out / "figures" / f"{name}.png").is_file()


@pytest.mark.parametrize("method", ["manifold-mle", "latent-flow"])
def test_manifold_estimators_refuse_images(tmp_path, capsys, method):
    out = tmp_path / "q"
    assert main(["run", "--preset", "quad", "--n-per-context", "4", "--epochs", "1",
                 "--methods", method, "--out", str(out), "--quiet"]) == 2  # fmt: skip
    assert "needs vector observations" in capsys.readouterr().err


def test_restarts_keep_the_best_fit_and_leave_no_checkpoints(tmp_path, capsys):
    import torch

    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["simulate", "--preset", "random", "--m", "3", "--n-per-context", "40",
                 "--out", str(data), "--quiet"]) == 0  # fmt: skip
    assert main(["train", str(data), "--out", str(run), "--methods", "latent-flow,pooled",
                 "--epochs", "3", "--restarts", "2", "--quiet"]) == 0  # fmt: skip
    for method in ("latent-flow", "pooled"):
        folder = run / "models" / method
        state = torch.load(folder / "final.pt", weights_only=False)
        assert state["settings"]["restarts"] == 2
        scores = state["history"]["restart_scores"]
        assert len(scores) == 2 and state["history"]["restart"] == int(np.argmin(scores))
        assert [p.name for p in folder.iterdir()] == ["final.pt"]
    assert main(["evaluate", str(run), "--data", str(data)]) == 0
    assert json.loads((run / "metrics.json").read_text())["restarts"] == 2
    assert "2 restart(s) per method" in (run / "report.md").read_text()
    capsys.readouterr()
    assert main(["train", str(data), "--out", str(tmp_path / "r2"), "--restarts", "0"]) == 2
    assert "restarts must be a positive integer" in capsys.readouterr().err


def test_context_flow_generates_a_composition_on_images_and_its_ablation_refuses(tmp_path, capsys):
    """The context module as exact prior trains on images through the command line and
    generates under a target set never seen in training; its labels-ignored ablation cannot
    intervene and says so."""
    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["simulate", "--preset", "quad", "--n-per-context", "24", "--out", str(data),
                 "--quiet"]) == 0  # fmt: skip
    assert main(["train", str(data), "--out", str(run), "--epochs", "3", "--quiet",
                 "--methods", "context-flow,context-flow-ablation"]) == 0  # fmt: skip
    out = tmp_path / "s.npy"
    assert main(["generate", str(run / "models" / "context-flow"), "--data", str(data),
                 "--targets", "quad1,size", "--n", "5", "--out", str(out)]) == 0  # fmt: skip
    x = np.load(out)
    assert x.dtype == np.uint8 and x.shape == (5, 32, 32, 3)
    capsys.readouterr()
    bad = tmp_path / "bad.npy"
    assert main(["generate", str(run / "models" / "context-flow-ablation"), "--data", str(data),
                 "--targets", "quad1", "--out", str(bad)]) == 2  # fmt: skip
    assert "context-flow-ablation" in capsys.readouterr().err and not bad.exists()


def test_the_flow_schedule_follows_the_budget_and_can_be_replaced():
    from conceptid.pipeline import METHODS
    from conceptid.simulations import BenchmarkSpec, generate

    ds = generate(BenchmarkSpec(preset="chain", preset_args={"m": 3}, n_train=4, n_val=2,
                                n_test=2))  # fmt: skip
    model = METHODS["context-flow"].make(ds, 30)
    assert (model.ae_epochs, model.snap_every) == (10, 5)  # a third, then a snap every sixth
    again = METHODS["context-flow-ablation"].build(ds, 30, ae_epochs=3, flow_layers=2)
    assert again.ae_epochs == 3 and len(again.flow.layers) == 2 and not again.use_labels
    assert METHODS["context-flow"].build(ds, 30, snap_every=1).snap_every == 1
