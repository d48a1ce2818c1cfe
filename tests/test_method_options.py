"""A method's construction options (``--method-arg``, ``train(options=)``, a sweep's
``options``): checked before any work, recorded with the model, and followed by every reader of
a trained model (reuse, resume, ``read_trained``, the report and its reproduce commands)."""

from __future__ import annotations

import inspect
import json
import shlex
from pathlib import Path

import pytest
from _cli import one_error

from conceptid.cli import main
from conceptid.errors import PipelineError
from conceptid.methods import BENCHMARK_METHODS, METHODS, check_options
from conceptid.models.trainer import CheckpointError, read_checkpoint, settings_key
from conceptid.simulations.benchmark import BenchmarkSpec, generate, load_dataset
from conceptid.simulations.errors import ConceptIDError
from conceptid.sweep import Cell, Sweep, SweepError, run_sweep
from conceptid.training import read_trained, train, train_settings

DATA = ["--preset", "random", "--preset-arg", "m=3", "--preset-arg", "p=6",
        "--n-per-context", "60"]  # fmt: skip
FLOW = ["--method-arg", "context-flow:flow_layers=2", "--method-arg",
        "context-flow:ae_activation=prelu"]  # fmt: skip
TRAIN = ["--epochs", "3", "--methods", "context-flow,pooled", "--quiet"]


@pytest.fixture(scope="module")
def ds():
    spec = BenchmarkSpec(preset="random", preset_args={"m": 3, "p": 6}, n_train=60, n_val=15,
                         n_test=15)  # fmt: skip
    return generate(spec)


# ------------------------------------------------------------------ the options themselves


@pytest.mark.parametrize("name", [*METHODS, *BENCHMARK_METHODS])
def test_every_option_is_a_keyword_of_the_model_class_with_a_default(name):
    method = (METHODS | BENCHMARK_METHODS)[name]
    params = inspect.signature(method.model_type().__init__).parameters
    names = method.option_names()
    assert names, name
    for option in names:
        assert params[option].default is not inspect.Parameter.empty, (name, option)
    # what the builder sets itself or derives from the data is not an option
    assert not set(names) & method.fixed
    assert not set(names) & {"obs_shape", "block_sizes", "nuisance_dim", "encoder", "decoder"}


def test_check_options_returns_plain_json_and_refuses_what_it_cannot_record():
    assert check_options("context-flow", None) == {}
    assert check_options("latent-flow", {"flow_hidden": 32, "ae_autocast": "bfloat16"}) == {
        "flow_hidden": 32, "ae_autocast": "bfloat16"}  # fmt: skip
    with pytest.raises(PipelineError, match="beta is too large for a real number"):
        check_options("pooled", {"beta": 10**400})
    # one record per model: a default given is no option (the same model as none), a whole
    # number given to a real-valued option is that real; but the options whose default follows
    # the budget (the two-step fits' ae_epochs and snap_every) are kept whatever their value
    assert check_options("pooled", {"hidden": 128}) == {}
    assert check_options("latent-flow", {"ae_autocast": None, "ae_whitening": 0}) == {}
    assert check_options("context-flow", {"ae_gaussianity": 1}) == {"ae_gaussianity": 1.0}
    assert isinstance(check_options("context-flow", {"ae_gaussianity": 1})["ae_gaussianity"], float)
    assert check_options("context-flow", {"ae_epochs": 20, "snap_every": 10}) == {
        "ae_epochs": 20, "snap_every": 10}  # fmt: skip
    assert check_options("manifold-mle", {"snap_every": 10}) == {"snap_every": 10}
    assert check_options("latent-flow", {"use_labels": False}) == {"use_labels": False}
    # a switch takes a JSON boolean: bool("False") would be True
    for value in ("False", "no", 0, 1, [1], None):
        with pytest.raises(PipelineError, match="refine_unpeeled takes true or false"):
            check_options("context-flow", {"refine_unpeeled": value})
    cases = {
        ("context-flow", "prior"): "set by the method itself",
        ("context-flow-ablation", "use_labels"): "set by the method itself",
        ("beta-vae", "beta"): "set by the method itself",
        ("context-flow", "flow_layer"): "takes no option 'flow_layer'; its options: ae_epochs",
        ("pooled", "obs_shape"): "takes no option 'obs_shape'",
        ("pooled", "encoder"): "takes no option 'encoder'",
    }
    for (name, key), said in cases.items():
        with pytest.raises(PipelineError, match=said):
            check_options(name, {key: 1})
    with pytest.raises(PipelineError, match="must be JSON"):
        check_options("context-flow", {"volume_eps": float("nan")})
    with pytest.raises(PipelineError, match="must be JSON"):
        check_options("context-flow", {"volume_eps": object()})
    with pytest.raises(PipelineError, match="must be a mapping"):
        check_options("context-flow", [("flow_layers", 2)])
    with pytest.raises(PipelineError, match="unknown method"):
        check_options("no-such-method", {})


# ------------------------------------------------------------------------ the Python API


def test_train_records_the_options_and_reuses_only_under_the_same_ones(ds, tmp_path):
    out = tmp_path / "run"
    t = train("context-flow", ds, out, epochs=3, progress=False, options={"flow_layers": 2})
    assert t.model.options()["flow_layers"] == 2 and not t.reused
    assert t.settings["options"] == {"flow_layers": 2}
    final = out / "models" / "context-flow" / "final.pt"
    saved = read_checkpoint(final)
    assert saved["settings"]["options"] == {"flow_layers": 2}
    assert saved["options"]["flow_layers"] == 2  # the model's own record agrees
    assert saved["key"] == settings_key(train_settings("context-flow", ds, epochs=3,
                                                       options={"flow_layers": 2}))  # fmt: skip
    again = train("context-flow", ds, out, epochs=3, progress=False, options={"flow_layers": 2})
    assert again.reused and again.model.options()["flow_layers"] == 2
    # another value, or none (the default 6 layers), is another model: refused, file kept
    for other in ({"flow_layers": 3}, None):
        with pytest.raises(PipelineError, match="trained under other settings: options"):
            train("context-flow", ds, out, epochs=3, progress=False, options=other)
    assert read_checkpoint(final)["key"] == saved["key"]
    # read back with the options it records: a 2-layer flow, not the default architecture
    back = read_trained(final, ds)
    assert back.model.options()["flow_layers"] == 2
    assert back.settings["options"] == {"flow_layers": 2}


def test_no_options_leave_the_settings_as_they_were(ds):
    # a model trained before options existed records no "options": its key must not move
    plain = train_settings("pooled", ds, epochs=3)
    assert "options" not in plain
    assert train_settings("pooled", ds, epochs=3, options={}) == plain
    assert settings_key(train_settings("pooled", ds, epochs=3, options=None)) == settings_key(plain)


def test_a_default_given_reuses_the_model_trained_without_options(ds, tmp_path):
    out = tmp_path / "run"
    first = train("pooled", ds, out, epochs=2, progress=False)
    again = train("pooled", ds, out, epochs=2, progress=False, options={"hidden": 128})
    assert again.reused and again.settings == first.settings


def test_run_refuses_a_bad_value_before_its_data_stage(tmp_path, capsys):
    from conceptid.config import RunConfig
    from conceptid.pipeline import run

    spec = BenchmarkSpec(preset="random", preset_args={"m": 3, "p": 6}, n_train=60, n_val=15,
                         n_test=15)  # fmt: skip
    out = tmp_path / "run"
    cfg = RunConfig(spec=spec, out=out, epochs=3, methods=["pooled"], progress=False,
                    options={"pooled": {"hidden": 0}})  # fmt: skip
    with pytest.raises(ConceptIDError, match="hidden must be a positive integer"):
        run(cfg)
    assert not out.exists() and "[1/5]" not in capsys.readouterr().out
    # options=None is no options; a method given an empty set of options is built as default
    assert RunConfig(spec=spec, out=out, options=None).options == {}
    assert RunConfig(spec=spec, out=out, options={"pooled": {}}).options == {}
    with pytest.raises(PipelineError, match="must be a mapping"):
        RunConfig(spec=spec, out=out, options={"pooled": []})


def test_a_bad_value_is_refused_before_anything_is_written(ds, tmp_path):
    out = tmp_path / "run"
    bad = [({"flow_layers": -1}, "flow_layers must be a positive integer"),
           ({"flow_layers": [2]}, "flow_layers"),
           ({"ae_activation": "tanhh"}, "ae_activation must be one of"),
           ({"finetune_after": 10}, "at or past the budget")]  # fmt: skip
    for options, said in bad:
        with pytest.raises(ConceptIDError, match=said):
            train("context-flow", ds, out, epochs=3, progress=False, options=options)
        assert not out.exists()


def test_a_file_recording_options_this_release_cannot_build_is_refused(ds, tmp_path):
    import torch

    out = tmp_path / "run"
    train("pooled", ds, out, epochs=2, progress=False, options={"hidden": 16})
    final = out / "models" / "pooled" / "final.pt"
    state = read_checkpoint(final)
    # as a later release might write it: an option this one does not have, or a value it
    # refuses, the key matching
    for options in ({"no_such_option": 1}, {"hidden": 0}):
        state["settings"]["options"] = options
        state["key"] = settings_key(state["settings"])
        torch.save(state, final)
        with pytest.raises(CheckpointError, match="records options this conceptid cannot build"):
            read_trained(final, ds)


# ------------------------------------------------------------------------ the command line


def test_run_with_method_args_reports_them_and_its_reproduce_command_reuses_the_models(
    tmp_path, capsys
):
    out = tmp_path / "run"
    assert main(["run", *DATA, *TRAIN, *FLOW, "--out", str(out)]) == 0
    capsys.readouterr()
    report = (out / "report.md").read_text()
    assert ('Built with options (the other methods with their defaults): context module as '
            'exact prior (two-step): ae_activation="prelu", flow_layers=2.') in report  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["methods"]["context-flow"]["training"]["options"] == {
        "ae_activation": "prelu", "flow_layers": 2}  # fmt: skip
    assert "options" not in metrics["methods"]["pooled"]["training"]
    # the run's own command line, as a shell reads it back: the same arguments
    said = report.split("## Reproduce")[1].split("```")[1].strip()
    assert shlex.split(said) == ["conceptid", "run", *DATA, *TRAIN, *FLOW, "--out", str(out)]
    # `evaluate` reads the models back with their options, and its report's command line
    # trains the same models: run it, and they are reused
    assert main(["evaluate", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "Built with options" in report
    line = next(x for x in report.splitlines() if x.startswith("conceptid train "))
    assert "--method-arg 'context-flow:ae_activation=\"prelu\"'" in line
    assert main(shlex.split(line)[1:] + ["--quiet"]) == 0
    said = capsys.readouterr().out
    assert said.count("reused (trained before under the same settings)") == 2, said
    # another value stops the command, naming the options, and keeps the model
    err = one_error(["train", str(out / "data"), "--out", str(out), *TRAIN,
                     "--method-arg", "context-flow:flow_layers=3"], capsys)  # fmt: skip
    assert "options {'ae_activation': 'prelu', 'flow_layers': 2} -> {'flow_layers': 3}" in err
    # generate reads the model back with its options
    assert main(["generate", str(out / "models" / "context-flow"), "--targets", "c0,c1",
                 "--n", "4", "--out", str(tmp_path / "g.npy")]) == 0  # fmt: skip


@pytest.mark.parametrize(
    ("arg", "said"),
    [
        ("context-flow", "expects METHOD:KEY=VALUE"),
        ("context-flow:flow_layers", "expects METHOD:KEY=VALUE"),
        ("no-such:flow_layers=2", "unknown method 'no-such'"),
        ("latent-flow:flow_layers=2", "latent-flow is not among the methods this command trains"),
        ("context-flow:flow_layer=2", "context-flow takes no option 'flow_layer'"),
        ("context-flow:prior=sem", "the option prior is set by the method itself"),
        ("context-flow:flow_layers=-1", "flow_layers must be a positive integer"),
        ("context-flow:flow_layers=[2", "is not valid JSON"),
        ("context-flow:finetune_after=5", "at or past the budget of 3 epochs"),
        ("context-flow:refine_unpeeled=False", "refine_unpeeled takes true or false, got 'False'"),
    ],
)
def test_bad_method_args_are_refused_in_one_line_before_anything_is_written(
    arg, said, tmp_path, capsys
):
    out = tmp_path / "run"
    err = one_error(["run", *DATA, *TRAIN, "--method-arg", arg, "--out", str(out)], capsys)
    assert said in err, err
    assert not out.exists()


def test_a_method_arg_given_twice_or_for_a_default_method(tmp_path, capsys):
    out = tmp_path / "run"
    err = one_error(["run", *DATA, *TRAIN, "--method-arg", "context-flow:flow_layers=2",
                     "--method-arg", "context-flow:flow_layers=3", "--out", str(out)],
                    capsys)  # fmt: skip
    assert "flow_layers is given twice" in err
    # without --methods the default methods are trained: ivae is offered on request only
    err = one_error(["run", *DATA, "--epochs", "3", "--method-arg", "ivae:hidden=8", "--out",
                     str(out)], capsys)  # fmt: skip
    assert "ivae is not among the methods this command trains" in err
    assert not out.exists()


def test_train_with_method_args_on_a_saved_dataset(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["simulate", "--preset", "random", "--m", "3", "--n-per-context", "60",
                 "--out", str(data), "--quiet"]) == 0  # fmt: skip
    out = tmp_path / "run"
    err = one_error(["train", str(data), "--out", str(out), "--epochs", "3", "--methods",
                     "pooled", "--method-arg", "pooled:hidden=0"], capsys)  # fmt: skip
    assert "pooled" in err and not out.exists()
    assert main(["train", str(data), "--out", str(out), "--epochs", "2", "--methods",
                 "pooled", "--method-arg", "pooled:hidden=16", "--quiet"]) == 0  # fmt: skip
    t = read_trained(out / "models" / "pooled" / "final.pt", load_dataset(data))
    assert t.settings["options"] == {"hidden": 16}


# ---------------------------------------------------------------------------------- sweeps


def _sweep(**extra) -> dict:
    return {"name": "opts", "benchmarks": [{"label": "L1", "spec": {
        "preset": "random", "preset_args": {"m": 3, "p": 6}, "n_train": 60, "n_val": 15,
        "n_test": 15}}], "methods": ["context-flow", "pooled"], "params": {"epochs": [2]},
        "seeds": [0], **extra}  # fmt: skip


def test_a_cell_without_options_keeps_its_key_and_options_change_it():
    plain = Cell("L1", {"preset": "random"}, "context-flow", {"epochs": 2}, 0)
    assert "options" not in plain.identity()
    with_opts = Cell("L1", {"preset": "random"}, "context-flow", {"epochs": 2}, 0,
                     options={"flow_layers": 2})  # fmt: skip
    assert with_opts.key != plain.key
    assert Cell.from_dict(with_opts.to_dict()) == with_opts


def test_sweep_options_are_checked_and_reach_the_fit(tmp_path):
    sweep = Sweep.from_dict(_sweep(options={"context-flow": {"flow_layers": 2}}))
    cells = {c.method: c for c in sweep.cells()}
    assert cells["context-flow"].options == {"flow_layers": 2} and cells["pooled"].options == {}
    res = run_sweep(sweep, tmp_path / "sw", workers=1, progress=False)
    assert not res.failed
    final = tmp_path / "sw" / "cells" / cells["context-flow"].key / "models" / "context-flow"
    assert read_checkpoint(final / "final.pt")["settings"]["options"] == {"flow_layers": 2}
    assert 'context-flow built with options {"flow_layers":2}' in (
        tmp_path / "sw" / "summary.md").read_text()  # fmt: skip
    for bad, said in [({"context-flow": {"flow_layer": 2}}, "takes no option 'flow_layer'"),
                      ({"latent-flow": {"flow_layers": 2}}, "not among the sweep's methods"),
                      ({"context-flow": {"flow_layers": 0}}, "flow_layers must be"),
                      ([1], "must be an object")]:  # fmt: skip
        with pytest.raises(SweepError, match=said):
            Sweep.from_dict(_sweep(options=bad))
    with pytest.raises(SweepError, match="must be a mapping"):
        Sweep.from_dict(_sweep(options={"pooled": []}))
    # a budget in sample visits: the options are built under the cell's own epochs (n_train
    # 500 in 6 training contexts, 20000 visits: 10 epochs), where step 3 would start too late
    visits = _sweep(options={"context-flow": {"finetune_after": 20}},
                    params={"sample_passes": [20000]})  # fmt: skip
    visits["benchmarks"][0]["spec"]["n_train"] = 500
    with pytest.raises(SweepError, match="at or past the budget of 10 epochs"):
        Sweep.from_dict(visits)
    custom = _sweep(options={"context-flow": {"flow_layers": 2}}, task="conceptid.sweep:toy_cell")
    with pytest.raises(SweepError, match="default task's"):
        Sweep.from_dict(custom)


def test_docs_list_the_options_of_every_method():
    text = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    for name, method in METHODS.items():
        row = next((x for x in text.splitlines() if x.startswith(f"| `{name}` |")), None)
        assert row is not None, name
        for option in method.option_names():
            assert f"`{option}`" in row, (name, option)
