"""The main job, stage by stage: generate -> check -> train -> evaluate -> report.

A *run directory* (:mod:`conceptid.rundir`) is the on-disk format every stage reads and writes,
so a run can be stopped and resumed anywhere (each file is written atomically):

    RUN/run.json                   the marker of a run directory (after ``conceptid train``,
                                   also the dataset directory its models were trained on)
    RUN/data/                      the dataset (simulations.benchmark format): generated from
                                   the spec, or a copy of the dataset given (``run --data``)
    RUN/check.json, check.txt      the identifiability verdict
    RUN/models/METHOD/final.pt     a trained model (written once training has finished)
    RUN/models/METHOD/checkpoint.pt  the trainer's resumable checkpoint (while training)
    RUN/metrics.json               every metric of every method (deterministic under the seed)
    RUN/timings.json               wall times of every stage and method
    RUN/figures/*.png, RUN/report.md

Every ``final.pt`` and checkpoint records the settings that determine it
(:func:`conceptid.training.train_settings`: the dataset's content hash, the method, seed, epochs,
batch size, learning rate, restarts, device type and the trainer's schedule) and their hash, and
``final.pt`` the normaliser of the data beside the model. A method is reused only when its
``final.pt`` was trained under exactly the settings asked for, and a checkpoint resumed only
then; otherwise the run stops naming what differs, and ``retrain=True`` (``--retrain``) discards
that method's model and checkpoints. Metrics and report state the settings stored with the
models.

The stages live in their own modules: the method registry (:mod:`conceptid.methods`), the run's
configuration and defaults (:mod:`conceptid.config`), the tensors and their normaliser
(:mod:`conceptid.splits`), the run directory (:mod:`conceptid.rundir`), training
(:mod:`conceptid.training`), evaluation (:mod:`conceptid.evaluation`), the report
(:mod:`conceptid.report`) and its figures (:mod:`conceptid.plots`). This module runs them in order
(:func:`run`, :func:`evaluate_dir`) and re-exports their public names.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from conceptid.identifiability import Report, check
from conceptid.simulations.benchmark import Dataset, load_dataset

from .config import DEFAULTS, REPORTED, RunConfig, check_options_trained
from .errors import PipelineError
from .evaluation import (
    NO_GROUND_TRUTH,
    Evaluation,
    check_evaluable,
    check_test_rows,
    common_settings,
    evaluate,
    evaluate_method,
    latent_means,
    verdicts,
)
from .methods import METHODS, Method, default_methods
from .report import write_report
from .rundir import (
    adopt_data,
    check_outputs,
    ensure_data,
    held_data,
    holds_run_dir,
    open_run_dir,
    require_run_dir,
    run_data,
    run_data_dir,
    write_json,
    write_text,
)
from .splits import Normaliser, splits
from .training import (
    Trained,
    check_builds,
    check_saved_settings,
    check_trainable,
    generate_samples,
    load_trained,
    read_trained,
    sample,
    saved_model,
    train,
    train_method,
    train_settings,
)

__all__ = [
    "METHODS",
    "NO_GROUND_TRUTH",
    "REPORTED",
    "Evaluation",
    "Method",
    "Normaliser",
    "PipelineError",
    "RunConfig",
    "Trained",
    "adopt_data",
    "check_saved_settings",
    "check_trainable",
    "common_settings",
    "default_methods",
    "ensure_data",
    "evaluate",
    "evaluate_and_report",
    "evaluate_dir",
    "evaluate_method",
    "generate_samples",
    "latent_means",
    "load_trained",
    "read_trained",
    "reproduce_commands",
    "run",
    "sample",
    "saved_model",
    "splits",
    "train",
    "train_method",
    "train_settings",
    "verdicts",
]


def _say(msg: str) -> None:
    print(msg, flush=True)


@holds_run_dir(lambda a: a["cfg"].out)
def run(cfg: RunConfig) -> dict:
    """All stages; returns the metrics dict (also in ``cfg.out/metrics.json``)."""
    if cfg.data is None and cfg.spec is None:
        raise PipelineError("a run needs a benchmark spec or a dataset (data=)")
    # the run ends in the evaluation: too few test rows, or something in the way of its
    # outputs, are refused before anything is made
    check_outputs(cfg.out)
    t0 = time.perf_counter()
    if cfg.data is None:
        truth = cfg.spec.build_model()
        check_test_rows(cfg.spec.n_test * len(truth.contexts), truth.sem.block_sizes)
        methods = cfg.methods or default_methods(images=truth.mixing.kind == "image")
        given = None
    else:
        given = load_dataset(cfg.data)  # verified once; adopt_data copies it
        methods = cfg.methods or default_methods(given)
    # a saved model or checkpoint of other settings stops the run before its data stage; what
    # needs the data (their hashes, the architecture) is checked once they are at hand, before
    # they are saved into the run directory
    check_options_trained(cfg.options, methods)  # cfg did where it names its methods
    for name in methods:
        check_saved_settings(name, cfg.out, retrain=cfg.retrain, **cfg.training(name))
    # a value a method's class refuses, before the data stage (on data of one row per context)
    check_builds(cfg.options, given if given is not None else cfg.spec, cfg.epochs)
    # adopt_data opens the run directory once the data pass the checks
    out = open_run_dir(cfg.out) if cfg.data is None else Path(cfg.out)

    def check_data(ds: Dataset) -> None:
        """What would refuse the data, or training on them, before anything is written."""
        if cfg.data is not None:
            check_evaluable(ds)
        for name in methods:
            check_trainable(name, ds, out, retrain=cfg.retrain, **cfg.training(name))

    def announce(ds: Dataset) -> None:
        """Stage 1 begins once the data given pass every check: before the copy."""
        check_data(ds)
        _say(f"[1/5] dataset: {cfg.data} -> {out / 'data'}")

    timings: dict = {}
    if cfg.data is not None:
        ds = adopt_data(cfg.data, out, check=announce, loaded=given)
    else:  # RUN/data when it is there, checked before the stage begins; else generated
        ds = held_data(cfg.spec, out, check=check_data)
        _say(f"[1/5] benchmark: {cfg.spec.preset or 'model'} -> {out / 'data'}")
        if ds is None:
            ds = ensure_data(cfg.spec, out, cfg.progress, check=check_data)
    timings["data"] = time.perf_counter() - t0
    _say(f"      {len(ds.context)} samples, {len(ds.context_names)} contexts "
         f"({timings['data']:.1f} s)")  # fmt: skip
    methods = list(methods)

    t0 = time.perf_counter()
    if ds.has_ground_truth:
        _say(f"[2/5] identifiability check ({cfg.check_method})")
        report = check(ds.model, cfg.check_method, rng=np.random.default_rng(cfg.seed))
        write_text(out / "check.txt", str(report) + "\n")
        write_text(out / "check.json", report.to_json() + "\n")
        _say("      " + ", ".join(f"{k}: {v}" for k, v in verdicts(report).items()))
        _say(f"      full report: {out / 'check.txt'} ({time.perf_counter() - t0:.1f} s)")
    else:
        report = None
        _say("[2/5] identifiability check: skipped (imported data: no ground-truth model to "
             "check)")  # fmt: skip
    timings["check"] = None if report is None else time.perf_counter() - t0  # None: skipped

    data_splits = splits(ds)  # once: every method is trained and evaluated on these tensors
    trained: dict[str, Trained] = {}
    timings["train"] = {}
    for i, name in enumerate(methods):
        t0 = time.perf_counter()
        _say(f"[3/5] train {name} ({i + 1}/{len(methods)})")
        t = train(name, ds, out, **cfg.training(name), progress=cfg.progress,
                  data_splits=data_splits, retrain=cfg.retrain)  # fmt: skip
        t.model.to("cpu").eval()
        trained[name] = t
        timings["train"][name] = t.history.get("seconds", 0.0)
        reused = "; trained before under the same settings, reused" if t.reused else ""
        _say(f"      {t.epochs_summary} ({time.perf_counter() - t0:.1f} s{reused})")

    return evaluate_and_report(ds, trained, cfg, report, timings, data_splits).metrics


def evaluate_and_report(
    ds: Dataset, trained: Mapping[str, Trained], cfg: RunConfig, check_report: Report | None,
    timings: dict, data_splits=None,
) -> Evaluation:  # fmt: skip
    """Stages 4 and 5: ``metrics.json``, ``timings.json``, the figures and ``report.md`` in
    ``cfg.out``; returns the evaluation (its ``metrics`` are ``metrics.json``)."""
    t0 = time.perf_counter()
    _say("[4/5] evaluate")
    evaluation = evaluate(ds, trained, spec=cfg.spec, check_report=check_report,
                          n_generate=cfg.n_generate, data_splits=data_splits,
                          say=_say)  # fmt: skip
    timings["evaluate"] = time.perf_counter() - t0
    _say(f"      ({timings['evaluate']:.1f} s)")
    write_json(cfg.out / "metrics.json", evaluation.metrics)
    write_json(cfg.out / "timings.json", timings)

    t0 = time.perf_counter()
    _say("[5/5] report")
    write_report(ds=ds, evaluation=evaluation, timings=timings, config=cfg)
    _say(f"      ({time.perf_counter() - t0:.1f} s)")
    _say(f"report: {cfg.out / 'report.md'}")
    return evaluation


def reproduce_commands(run_dir: Path, data: Path | None, trained: Mapping[str, Trained],
                       check_method: str = DEFAULTS.check_method) -> str:  # fmt: skip
    """The command lines that train ``trained`` as they were trained (from the settings stored
    with them, construction options as ``--method-arg``; methods trained alike share a line)
    and evaluate them."""
    groups: dict = {}
    for name, t in trained.items():
        groups.setdefault(tuple(t.settings.get(k) for k in REPORTED), []).append(name)
    # where run_data found it: RUN/data, else the directory train recorded
    data_arg = shlex.quote(str(data if data is not None else run_data_dir(run_dir)[0]))
    run_arg = shlex.quote(str(run_dir))
    lines = []
    for values, names in groups.items():
        st = dict(zip(REPORTED, values))
        line = (f"conceptid train {data_arg} --out {run_arg} --methods {','.join(names)} "
                f"--seed {st['seed']} --epochs {st['epochs']} --batch-size {st['batch_size']} "
                f"--restarts {st['restarts']} --device {st['device']}")  # fmt: skip
        for name in names:
            for key, value in (trained[name].settings.get("options") or {}).items():
                line += " --method-arg " + shlex.quote(f"{name}:{key}={json.dumps(value)}")
        if st["lr"] != DEFAULTS.lr:
            line += f"  # learning rate {st['lr']}: train_method(lr=...) in Python"
        lines.append(line)
    line = f"conceptid evaluate {run_arg}" + (f" --data {data_arg}" if data is not None else "")
    suffix = f" --check-method {check_method}" if check_method != DEFAULTS.check_method else ""
    lines.append(line + suffix)
    return "\n".join(lines)


@holds_run_dir(lambda a: a["run_dir"], create=False)
def evaluate_dir(run_dir: Path, data: Path | None = None,
                 check_method: str | None = None) -> dict:  # fmt: skip
    """Evaluate every trained model of the run directory ``run_dir`` (``conceptid evaluate``):
    metrics, figures and report, stating the settings stored with the models.

    Parameters
    ----------
    run_dir : Path
        A run directory with ``models/*/final.pt``.
    data : Path, optional
        The dataset directory the models were trained on (default: ``run_dir/data``, else
        the directory ``conceptid train`` recorded: :func:`conceptid.rundir.run_data`).
    check_method : {"exact", "numeric"}, optional
        The arithmetic of the identifiability check (default ``"exact"``); not for a dataset
        without a ground truth, where no check runs.

    Returns
    -------
    dict
        The metrics (also in ``run_dir/metrics.json``).

    Raises
    ------
    conceptid.rundir.RunDirError
        ``run_dir`` is not a run directory, or something is in the way of an output
        (:func:`conceptid.rundir.check_outputs`).
    PipelineError
        It holds no trained model, or a model in the folder of another method;
        ``check_method`` given for data without a ground truth.
    CheckpointError, DatasetError
        A damaged model or dataset, or a model trained on another dataset.
    """
    run_dir = require_run_dir(run_dir)
    check_outputs(run_dir)
    ds = run_data(run_dir, data)
    check_evaluable(ds)
    if check_method is not None and not ds.has_ground_truth:
        raise PipelineError("a check method was given, but the run's data have no ground-truth "
                            "model: no identifiability check runs on them")  # fmt: skip
    check_method = check_method or DEFAULTS.check_method
    finals = sorted((run_dir / "models").glob("*/final.pt"))
    if not finals:
        raise PipelineError(f"{run_dir / 'models'} holds no trained model (run `conceptid "
                            "train`)")  # fmt: skip
    trained: dict[str, Trained] = {}
    for f in finals:
        t = read_trained(f, ds)
        if t.method != f.parent.name:  # moved or copied by hand: it would replace that method
            raise PipelineError(f"{f} holds a model of {t.method}, not of {f.parent.name}: "
                                f"models/METHOD/final.pt must be METHOD's (moved or copied by "
                                f"hand?)")  # fmt: skip
        trained[t.method] = t
    first = next(iter(trained.values())).settings
    cfg = RunConfig(spec=ds.spec, out=run_dir, seed=first["seed"], epochs=first["epochs"],
                    batch_size=first["batch_size"], lr=first["lr"], restarts=first["restarts"],
                    methods=list(trained), check_method=check_method, progress=False,
                    command=reproduce_commands(run_dir, data, trained, check_method),
                    options={k: t.settings.get("options") for k, t in trained.items()})  # fmt: skip
    report = None
    if ds.has_ground_truth:  # the check the report states, in place of an earlier one
        report = check(ds.model, check_method, rng=np.random.default_rng(cfg.seed))
        write_text(run_dir / "check.txt", str(report) + "\n")
        write_text(run_dir / "check.json", report.to_json() + "\n")
    # no data stage ran here, and no check for data without ground truth
    timings = {"check": None if report is None else report.seconds,
               "train": {k: t.history.get("seconds", 0.0) for k, t in trained.items()}}  # fmt: skip
    return evaluate_and_report(ds, trained, cfg, report, timings).metrics
