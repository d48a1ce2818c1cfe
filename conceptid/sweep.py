"""Sweeps: a grid of benchmark specs x methods x parameters x seeds, run on Dask.

A sweep is a JSON file (or a :class:`Sweep`)::

    {
      "name": "consistency",
      "benchmarks": [{"label": "L3", "spec": {"preset": "random", "preset_args": {...}}}],
      "spec_grid": {"n_train": [500, 2000]},        # optional: every benchmark at each value
      "methods": ["latent-flow", "pooled"],
      "options": {"latent-flow": {"flow_layers": 10}},  # optional: a method's construction
                                                    # options (not a grid; `--method-arg`)
      "params": {"epochs": [60]},                   # optional: training settings, a grid
      "seeds": [0, 1, 2],
      "x": "n_train",                               # optional: the figure's horizontal axis
      "retries": 2,                                 # optional: a failing cell's extra attempts
      "threads": 1,                                 # optional: torch threads per cell
      "task": "conceptid.sweep:fit_cell"            # optional: what one cell runs
    }

A task is a function of the cell (a dict: its label, spec, method, params, seed, options) that
returns a dict of metrics; a cell whose task returns anything else fails.

Every combination is a :class:`Cell`. A cell is keyed by a content hash of everything that
determines it (the task, the benchmark spec with its seed, the method and its options, the
parameters, the package version), so a rerun skips finished cells, and two sweeps that share a
cell share its result. Cells run on Dask's ``distributed`` engine: a ``LocalCluster`` on this
machine by default (one process per worker, one torch thread each; no more workers than cells,
nor than the memory takes), or an existing cluster (``scheduler=ADDRESS``, ``tcp://``,
``tls://``, ``ws://`` or ``wss://``; for Slurm or PBS start one with dask-jobqueue).
The client alone writes results, each atomically:

    sweep.json              the marker and the sweep's definition
    cells/KEY.json          a finished cell: its definition and its result (one that cannot
                            be read, or is not such a record, counts as not finished: the
                            cell runs again and the file is replaced; a directory there is
                            refused before any work)
    cells/KEY.failed.json   a cell that failed every attempt: its error (retried on the next run)
    cells/KEY/              the default task's run directory (dataset, model, checkpoints)
    summary.csv, summary.md   mean, standard error and per-seed values
    summary.png               the figure, when the grid has an axis to draw (a run without
                              one removes an earlier run's)

A worker that dies mid-cell (killed, out of memory) loses nothing: the scheduler hands the cell to
another worker, and the default task resumes from the cell's training checkpoint. A cell that
raises is retried ``retries`` times and then recorded as failed without stopping the others.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import io
import json
import math
import numbers
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from itertools import product
from pathlib import Path

import numpy as np

from conceptid.simulations.atomic import describe_contents
from conceptid.simulations.benchmark import BenchmarkSpec
from conceptid.simulations.errors import ConceptIDError
from conceptid.simulations.resources import (
    MemoryLimitError,
    check_memory,
    estimate_dataset,
    training_bytes,
)
from conceptid.simulations.validation import check_number, parse_json, probe_json, read_bytes

from .rundir import holds_run_dir, write_text

__all__ = [
    "FORMAT",
    "Cell",
    "Sweep",
    "SweepError",
    "SweepResult",
    "aggregate",
    "cell_epochs",
    "check_sweep_dir",
    "fit_cell",
    "run_sweep",
    "summary_markdown",
    "sweep_figure",
    "toy_cell",
]

FORMAT = "conceptid.sweep/1"
MARKER = "sweep.json"
_FIELDS = {"name", "benchmarks", "spec_grid", "methods", "options", "params", "seeds", "x",
           "retries", "threads", "task"}  # fmt: skip
#: the default task's training parameters, each with its range (as TrainConfig checks them)
_PARAMS = {"epochs": {}, "batch_size": {}, "restarts": {},
           "lr": {"integer": False, "minimum": 0, "exclusive": True},
           "sample_passes": {"integer": False, "minimum": 0, "exclusive": True}}  # fmt: skip
#: the default task
FIT = "conceptid.sweep:fit_cell"
#: a task: ``module:function``, the module an absolute dotted name
_TASK = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
#: the summary's own columns, which no grid axis may be called
_ROW = {"benchmark", "method", "metric", "mean", "se", "n", "min", "max", "per_seed", "seeds"}
#: the most extra attempts of a failing cell, and the most torch threads per cell
MAX_RETRIES = 100
MAX_THREADS = 1024
#: how long :func:`run_sweep` waits for a scheduler given by its address
_CONNECT_TIMEOUT = "20s"
#: how a sweep's user sets the memory limit, for :func:`check_memory`'s message, which adds
#: "or the CONCEPTID_MAX_MEMORY environment variable" (the way from Python)
_SETTING = "`conceptid sweep --max-memory GIB`"
#: the local workers of :func:`run_sweep` by default (and of ``conceptid sweep``)
WORKERS = 2
#: bytes one local worker process needs before its cell's data: a fresh Python that imports
#: torch and conceptid (``python -c "import torch, conceptid.pipeline, resource;
#: print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"``) peaked at 342,400 KiB, and a
#: LocalCluster worker that had also loaded distributed and conceptid.sweep at 399,816 KiB
#: (measured on Linux, Python 3.11, torch on CPU); rounded up
WORKER_BYTES = 512 * 2**20


class SweepError(ConceptIDError):
    """A malformed sweep definition, a sweep directory that is not one, a scheduler that
    cannot be reached, or local workers that the memory cannot take."""


def _version() -> str:
    from conceptid import __version__

    return __version__


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Cell:
    """One fit: a benchmark spec (seed included), a method with its construction options,
    training parameters, a task."""

    label: str
    spec: Mapping
    method: str
    params: Mapping
    seed: int
    task: str = FIT
    threads: int = 1
    options: Mapping = field(default_factory=dict)

    def identity(self) -> dict:
        """Everything that determines the cell's result (``threads`` does not); the method's
        options only where there are any, so a cell without keeps the key it had before
        sweeps took options."""
        out = {"task": self.task, "spec": dict(self.spec), "method": self.method,
               "params": dict(self.params), "seed": self.seed, "version": _version()}  # fmt: skip
        if self.options:
            out["options"] = dict(self.options)
        return out

    @property
    def key(self) -> str:
        return hashlib.sha256(_canonical(self.identity()).encode()).hexdigest()[:20]

    def to_dict(self) -> dict:
        return {"label": self.label, "spec": dict(self.spec), "method": self.method,
                "params": dict(self.params), "seed": self.seed, "task": self.task,
                "threads": self.threads, "options": dict(self.options)}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping) -> Cell:
        return cls(d["label"], d["spec"], d["method"], d["params"], int(d["seed"]), d["task"],
                   int(d.get("threads", 1)), dict(d.get("options") or {}))  # fmt: skip


def _object(d: Mapping, key: str) -> dict:
    """The optional grid ``d[key]`` (default empty) as a dict, or a SweepError naming it."""
    value = d.get(key, {})
    if not isinstance(value, Mapping):
        raise SweepError(f"{key} must be an object of lists, got {type(value).__name__}")
    return dict(value)


def _grid(d: Mapping, what: str) -> list[dict]:
    if not isinstance(d, Mapping):
        raise SweepError(f"{what} must be an object of lists, got {type(d).__name__}")
    for k, v in d.items():
        if not isinstance(v, list) or not v:
            raise SweepError(f"{what}.{k} must be a non-empty list, got {v!r}")
    keys = sorted(d)
    return [dict(zip(keys, vals, strict=True)) for vals in product(*(d[k] for k in keys))]


@dataclass(frozen=True)
class Sweep:
    """A grid of benchmark specs x methods x parameters x seeds (see the module docstring)."""

    name: str
    benchmarks: tuple[tuple[str, dict], ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    spec_grid: Mapping = field(default_factory=dict)
    params: Mapping = field(default_factory=dict)
    options: Mapping = field(default_factory=dict)
    x: str | None = None
    retries: int = 2
    threads: int = 1
    task: str = "conceptid.sweep:fit_cell"

    @classmethod
    def from_dict(cls, d: Mapping, progress: bool = False) -> Sweep:
        """Validate a sweep definition; every problem is a :class:`SweepError` naming it.
        ``progress``: a progress bar (on stderr) over the cells being checked, once the check
        has taken two seconds (every seed's model is built: minutes for 100000 seeds)."""
        if not isinstance(d, Mapping):
            raise SweepError(f"a sweep must be a JSON object, got {type(d).__name__}")
        unknown = sorted(set(d) - _FIELDS)
        if unknown:
            raise SweepError(f"unknown sweep field(s) {unknown}; known: {sorted(_FIELDS)}")
        for req in ("benchmarks", "methods", "seeds"):
            if req not in d:
                raise SweepError(f"a sweep needs {req!r}")
        name = d.get("name", "sweep")
        if not isinstance(name, str):
            raise SweepError(f"name must be a string, got {type(name).__name__}")
        benches = d["benchmarks"]
        if not isinstance(benches, list) or not benches:
            raise SweepError("benchmarks must be a non-empty list")
        out, labels = [], set()
        for i, b in enumerate(benches):
            if not isinstance(b, Mapping) or "spec" not in b:
                raise SweepError(f"benchmarks[{i}] must be an object with a 'spec'")
            unknown = sorted(set(b) - {"label", "spec"}, key=str)
            if unknown:  # a misspelt label would name the benchmark b0 in every summary
                raise SweepError(f"benchmarks[{i}]: unknown field(s) {unknown}; known: "
                                 "['label', 'spec']")  # fmt: skip
            if not isinstance(b["spec"], Mapping):
                raise SweepError(f"benchmarks[{i}].spec must be an object (a benchmark spec), "
                                 f"got {type(b['spec']).__name__}")  # fmt: skip
            label = b.get("label", f"b{i}")
            if not isinstance(label, str | numbers.Real) or isinstance(label, bool):
                raise SweepError(f"benchmarks[{i}].label must be a string or a number, "
                                 f"got {type(label).__name__}")  # fmt: skip
            label = str(label)  # a number names the benchmark as it reads: 500 is "500"
            if label in labels:
                raise SweepError(f"benchmark label {label!r} appears twice")
            labels.add(label)
            out.append((label, dict(b["spec"])))
        methods = d["methods"]
        if not isinstance(methods, list) or not methods:
            raise SweepError("methods must be a non-empty list of method names")
        bad = [m for m in methods if not isinstance(m, str)]
        if bad:
            raise SweepError(f"methods must be method names (strings), got {bad[0]!r}")
        task = d.get("task", FIT)
        if not isinstance(task, str) or not _TASK.fullmatch(task):
            raise SweepError(f"task must be 'module:function' (an importable module and a "
                             f"function of it), got {task!r}")  # fmt: skip
        if task == FIT:
            from conceptid.methods import METHODS

            bad = [m for m in methods if m not in METHODS]
            if bad:
                raise SweepError(f"unknown method(s) {bad}; known: {sorted(METHODS)}")
        options = _options(d.get("options", {}), methods, task)
        seeds = d["seeds"]
        if not isinstance(seeds, list) or not seeds:
            raise SweepError("seeds must be a non-empty list of integers")
        seeds = tuple(check_number(s, "seed", minimum=0, error=SweepError) for s in seeds)
        if len(set(seeds)) != len(seeds):
            raise SweepError(f"seeds repeat: {list(seeds)}")
        spec_grid, params = _object(d, "spec_grid"), _object(d, "params")
        unknown = sorted(set(params).difference(_PARAMS))
        if task == FIT and unknown:
            raise SweepError(f"unknown training parameter(s) {unknown}; "
                             f"known: {sorted(_PARAMS)}")  # fmt: skip
        if "seed" in spec_grid:  # the cell's seed overrides the spec's
            raise SweepError("seed may not be a spec_grid axis: 'seeds' gives every cell's "
                             "spec its seed (one cell per seed)")  # fmt: skip
        # the summary's columns: a grid axis may not take the name of another column
        clash = sorted((set(spec_grid) & set(params)) | ((set(spec_grid) | set(params)) & _ROW))
        if clash:
            raise SweepError(f"grid axis name(s) {clash} clash in the summary: an axis may "
                             "not be both in spec_grid and params, nor be one of "
                             f"{sorted(_ROW)}")  # fmt: skip
        x = d.get("x")
        if x is not None and not isinstance(x, str):
            raise SweepError(f"x must be the name of a spec_grid or params axis (a string), "
                             f"got {x!r}")  # fmt: skip
        retries = check_number(d.get("retries", 2), "retries", minimum=0, error=SweepError)
        if retries > MAX_RETRIES:
            raise SweepError(f"retries must be at most {MAX_RETRIES}, got {retries}")
        threads = check_number(d.get("threads", 1), "threads", error=SweepError)
        if threads > MAX_THREADS:
            raise SweepError(f"threads must be at most {MAX_THREADS} (torch threads per cell), "
                             f"got {threads}")  # fmt: skip
        _resolve(task)
        sweep = cls(
            name=name,
            benchmarks=tuple(out),
            methods=tuple(methods),
            seeds=seeds,
            spec_grid=spec_grid,
            params=params,
            options=options,
            x=x,
            retries=retries,
            threads=threads,
            task=task,
        )
        # the grids and every spec, before any work
        cells = sweep._cells(validate=True, progress=progress)
        if sweep.x is not None and sweep.x not in set(sweep.spec_grid) | set(sweep.params):
            raise SweepError(f"x {sweep.x!r} is not an axis of spec_grid or params")
        seen: dict[str, tuple[Cell, dict]] = {}
        for c, sg in cells:
            if c.key in seen:
                raise SweepError(f"two cells of the grid are the same fit: "
                                 f"{_describe(*seen[c.key])} and {_describe(c, sg)} give the "
                                 "same spec, method, parameters and seed")  # fmt: skip
            seen[c.key] = (c, sg)
        return sweep

    @classmethod
    def from_json(cls, path: str | os.PathLike, progress: bool = False) -> Sweep:
        """The sweep of a JSON file, validated (:meth:`from_dict`, ``progress`` as there)."""
        # a path with a NUL byte (which lexists calls missing) is named by read_bytes
        if "\0" not in str(path) and not os.path.lexists(path):
            raise SweepError(f"no sweep file {path}")
        # not a regular file (a device, a pipe) or too large: refused before it is read
        text = read_bytes(path, SweepError, "the sweep file ")
        d = parse_json(text, str(path), SweepError, invalid="is not a readable JSON sweep")
        return cls.from_dict(d, progress)

    def to_dict(self) -> dict:
        return {"name": self.name, "benchmarks": [{"label": lab, "spec": s}
                                                  for lab, s in self.benchmarks],
                "spec_grid": dict(self.spec_grid), "methods": list(self.methods),
                "options": dict(self.options),
                "params": dict(self.params), "seeds": list(self.seeds), "x": self.x,
                "retries": self.retries, "threads": self.threads, "task": self.task}  # fmt: skip

    def cells(self, validate: bool = False) -> list[Cell]:
        """Every cell, in a fixed order (benchmark, spec grid, method, params, seed);
        ``validate`` checks each cell against the memory limit (:func:`_check_size`: for the
        default task generating its data and training on them, for a custom task its model
        alone) and then builds its model (refusing a bad preset argument) and, for
        the default task, checks every training parameter, that every split has samples, that
        every method takes the data (images or vectors) in a size it trains on, and that the
        training rows are as many as its model needs (``min_training_rows``: the latent's
        dimensions plus one where its autoencoder starts at the principal components)."""
        return [c for c, _ in self._cells(validate)]

    def _cells(self, validate: bool = False, progress: bool = False) -> list[tuple[Cell, dict]]:
        """Every cell with its spec-grid point (the values as the sweep gives them);
        ``progress``: a bar over them (:meth:`from_dict`)."""
        out = []
        fit = validate and self.task == FIT
        built: dict = {}  # _check_rows' models, by what decides their architecture
        grids = (self.benchmarks, _grid(self.spec_grid, "spec_grid"), self.methods,
                 _grid(self.params, "params"), self.seeds)  # fmt: skip
        points: Iterable = product(*grids)
        if progress:
            from tqdm import tqdm

            points = tqdm(points, total=math.prod(map(len, grids)), desc="checking the sweep",
                          unit="cell", delay=2.0, leave=False)  # fmt: skip
        for (label, spec), sg, method, pg, seed in points:
            for k, v in pg.items() if fit else ():  # the default task's training settings
                if isinstance(v, float) and v.is_integer() and _PARAMS[k].get("integer", True):
                    v = int(v)  # JSON's 1e3 or 256.0 is a count, as fit_cell reads it
                check_number(v, f"params.{k}", error=SweepError, **_PARAMS[k])
            full = {**spec, **sg, "seed": seed}
            try:
                bs = BenchmarkSpec.from_dict(full)
                for k in ("n_train", "n_val", "n_test") if fit else ():  # as `conceptid run`
                    check_number(getattr(bs, k), k, error=SweepError)
                if validate:
                    _check_size(bs, f"the cell {label} (seed {seed})", task=self.task)
                    model = bs.build_model()  # a bad preset or argument is refused now
                    if fit:
                        _check_method(method, model)
                        _check_rows(method, pg, bs, model, built, self.options.get(method))
                full = bs.to_dict()
            except (ConceptIDError, TypeError) as e:
                raise SweepError(f"benchmark {label!r}: {e}") from None
            cell = Cell(label, full, method, pg, seed, self.task, self.threads,
                        dict(self.options.get(method, {})))  # fmt: skip
            out.append((cell, sg))
        return out


def _options(given, methods: Sequence[str], task: str) -> dict:
    """The sweep's ``options``: an object mapping methods of the sweep to their construction
    options (:func:`conceptid.methods.check_options`; the default task only)."""
    if not isinstance(given, Mapping):
        raise SweepError(f"options must be an object mapping methods to their options, got "
                         f"{type(given).__name__}")  # fmt: skip
    if given and task != FIT:
        raise SweepError("options are the default task's (construction options of its methods); "
                         "a custom task reads its own parameters from params")  # fmt: skip
    stray = [m for m in given if m not in methods]
    if stray:
        raise SweepError(f"options of {stray}, which are not among the sweep's methods")
    from conceptid.methods import check_options

    try:
        checked = {m: check_options(m, o) for m, o in given.items()}
    except ConceptIDError as e:
        raise SweepError(f"options: {e}") from None
    return {m: o for m, o in checked.items() if o}


def _describe(cell: Cell, point: Mapping) -> str:
    """A cell as the sweep gives it: its benchmark, spec-grid point, method, parameters and
    seed (``the cell L1 (n_train=500, method pooled, epochs=60, seed 0)``)."""
    values = [f"{k}={_text(v)}" for k, v in point.items()]
    values += [f"method {cell.method}", *(f"{k}={_text(v)}" for k, v in cell.params.items())]
    return f"the cell {cell.label} ({', '.join([*values, f'seed {cell.seed}'])})"


def _check_size(spec: BenchmarkSpec, what: str, task: str) -> None:
    """Refuse a cell that would not fit the memory limit (``--max-memory`` of ``conceptid
    sweep``, or the ``CONCEPTID_MAX_MEMORY`` environment variable, else the memory available),
    before anything is built: for the default task its data and its training, as ``conceptid
    run`` checks them. A custom task's data are its own business (the package never generates
    them), so for one only the model is checked, which the sweep builds to validate the spec."""
    if task != FIT:
        spec = replace(spec, n_train=1, n_val=1, n_test=1)  # the model, without its data
    est = estimate_dataset(spec)
    if est is None:  # too malformed to size: building it refuses it with its own message
        return
    need = est.peak_bytes
    if task == FIT:
        need = max(need, est.array_bytes + training_bytes(est.rows, est.obs_shape))
        shape = f" ({est.rows} samples of shape {est.obs_shape})" if est.rows else ""
    else:
        shape = " (its model)"
    try:
        check_memory(need, what + shape, setting=_SETTING)
    except MemoryLimitError as e:
        raise SweepError(str(e)) from None


def _check_method(method: str, model) -> None:
    """The default task's method against the data: vectors for a vectors-only method, and
    images of a size the models train on."""
    from conceptid.methods import METHODS
    from conceptid.simulations.imported import TRAINABLE_IMAGE_SIZES

    shape = tuple(model.mixing.output_shape)
    if len(shape) != 3:
        return
    if METHODS[method].vectors_only:
        raise SweepError(f"the sweep's methods: {method} needs vector observations; this "
                         "benchmark holds images")  # fmt: skip
    if shape[0] not in TRAINABLE_IMAGE_SIZES:
        raise SweepError(f"image size {shape[0]} is not supported: the models take "
                         f"{' or '.join(map(str, TRAINABLE_IMAGE_SIZES))} pixels")  # fmt: skip


def _check_rows(method: str, params: Mapping, spec: BenchmarkSpec, model, built: dict,
                options: Mapping | None = None) -> None:  # fmt: skip
    """The default task's training rows (``n_train`` in each training context) against what the
    method's model needs (:func:`conceptid.models.trainer.check_training_rows`, as ``conceptid
    run`` checks them): its model is built with its ``options`` on a dataset of one row per
    split and context (refusing a value its class refuses), once per architecture (the spec
    but its seed and sizes, the method, its options and the parameters)."""
    from conceptid.models.trainer import check_training_rows
    from conceptid.simulations.benchmark import generate
    from conceptid.training import build_model

    small = replace(spec, n_train=1, n_val=1, n_test=1, seed=0)
    rows = spec.n_train * len(model.contexts)
    epochs = _epochs(params, rows)  # the cell's own budget, not the small dataset's
    key = _canonical([small.to_dict(), method, epochs, dict(options or {})])
    if key not in built:
        try:
            built[key] = build_model(method, generate(small), epochs, dict(options or {}))
        except ConceptIDError as e:
            raise SweepError(f"method {method}: {e}") from None
    try:
        check_training_rows(built[key], rows)
    except ConceptIDError as e:
        raise SweepError(f"method {method}, n_train={spec.n_train}: {e}") from None


def _resolve(task: str) -> Callable[[dict], dict]:
    module, _, name = task.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise SweepError(f"cannot import the task {task!r}: {e}") from None
    except SystemExit as e:  # a module that exits as it is imported: not the command's exit
        raise SweepError(f"cannot import the task {task!r}: importing it called sys.exit"
                         f"({e.code!r})") from None  # fmt: skip
    if not callable(fn):
        raise SweepError(f"the task {task!r} is not callable")
    return fn


def _run_cell(cell: dict) -> dict:
    """What a worker runs: the cell's task with the cell's torch threads, timed."""
    threads = int(cell.get("threads", 1))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    t0 = time.perf_counter()
    result = _resolve(cell["task"])(cell)
    return {"result": result, "seconds": time.perf_counter() - t0, "pid": os.getpid()}


# ------------------------------------------------------------------------------- tasks


def toy_cell(cell: Mapping) -> dict:
    """A task for trying a cluster and for the tests: sleeps ``params["sleep"]`` seconds
    (default 0.2) and returns numbers that depend only on the cell (no training)."""
    params = cell.get("params", {})
    if params.get("fail") or int(cell["seed"]) in params.get("fail_seeds", ()):
        raise RuntimeError(f"toy cell told to fail (seed {cell['seed']})")
    time.sleep(float(params.get("sleep", 0.2)))
    n = int(cell["spec"].get("n_train", 1))
    return {"score": 1.0 - 1.0 / math.sqrt(n) + 0.01 * int(cell["seed"]), "n": n}


def fit_cell(cell: Mapping, root: str | os.PathLike | None = None) -> dict:
    """The default task: generate the benchmark, train the method, evaluate.

    Runs in the cell's own run directory ``ROOT/cells/KEY`` (``root`` is the sweep directory,
    passed by :func:`run_sweep`), so a cell interrupted by a dead worker resumes from its
    training checkpoint. Returns the pipeline's evaluation (:func:`conceptid.pipeline.
    evaluate_method`: per-concept R^2 up to the class, concept and composition SWD, ...) and, on
    vector data with ground truth for a model with a likelihood, the NLL gap on the validation
    split (:func:`conceptid.simulations.density.true_nll`)."""
    from conceptid.config import DEFAULTS
    from conceptid.evaluation import evaluate_method
    from conceptid.rundir import ensure_data
    from conceptid.splits import splits
    from conceptid.training import train

    c = Cell.from_dict(cell)
    spec = BenchmarkSpec.from_dict(dict(c.spec))
    root = Path(root if root is not None else cell.get("root", "."))
    out = root / "cells" / c.key
    ds = ensure_data(spec, out, progress=False)
    p = dict(c.params)
    trained = train(
        c.method, ds, out, seed=c.seed, epochs=cell_epochs(p, ds),
        batch_size=int(p.get("batch_size", DEFAULTS.batch_size)),
        lr=float(p.get("lr", DEFAULTS.lr)), restarts=int(p.get("restarts", 1)), progress=False,
        options=dict(c.options),
    )  # fmt: skip
    data_splits = splits(ds, trained.normaliser)
    res = evaluate_method(c.method, trained.model, ds, seed=c.seed, data_splits=data_splits,
                          normaliser=trained.normaliser)  # fmt: skip
    res = {k: v for k, v in res.items() if k != "r2_matrix"}
    res["min_r2"] = None if res.get("r2") is None else float(min(res["r2"]))
    res["nll_gap"] = _nll_gap(trained, ds, data_splits)
    res["epochs"] = cell_epochs(p, ds)
    # the training's own time, from the saved history (also for a model trained before and
    # reused now, when the cell's own seconds count only the evaluation)
    res["train_seconds"] = trained.history.get("seconds")
    return res


def cell_epochs(params: Mapping, ds) -> int:
    """The epochs of a cell: ``params["epochs"]`` (default: the run default), or, with
    ``sample_passes`` P, a budget in training-sample visits that stays the same as ``n``
    grows: ``ceil(P / rows)`` epochs over the training rows of the training contexts, at
    least 10, at most ``epochs`` when that is given too."""
    return _epochs(params, int(ds.rows("train", "training").sum()))


def _epochs(params: Mapping, rows: int) -> int:
    """:func:`cell_epochs` for ``rows`` training rows of the training contexts."""
    if "sample_passes" not in params:
        from conceptid.config import DEFAULTS

        return int(params.get("epochs", DEFAULTS.epochs))
    epochs = max(10, math.ceil(float(params["sample_passes"]) / max(rows, 1)))
    return min(epochs, int(params["epochs"])) if "epochs" in params else epochs


def _nll_gap(trained, ds, data_splits) -> float | None:
    model = trained.model
    if not (ds.has_ground_truth and hasattr(model, "nll")) or ds.is_image:
        return None
    import torch

    from conceptid.simulations.density import true_nll

    norm, (_, va, _, _) = data_splits
    with torch.no_grad():
        learned = model.nll(va.x, va.targets).double().mean().item()
    mean = None if norm.mean is None else norm.mean.double().numpy()
    std = None if norm.std is None else norm.std.double().numpy()
    return float(learned - true_nll(ds, "val", mean=mean, std=std).mean())


# ------------------------------------------------------------------------------- engine


@dataclass
class SweepResult:
    """What a run of :func:`run_sweep` did and where the results are: ``summary_files``, the
    summaries this run wrote (``summary.csv``, ``summary.md``, then ``summary.png`` when the
    sweep has an axis to draw and a finished cell)."""

    out: Path
    cells: int
    skipped: int
    ran: int
    failed: list[str]
    seconds: float
    rows: list[dict]
    summary_files: tuple[Path, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.failed


def check_sweep_dir(out: str | os.PathLike) -> Path:
    """``out`` as a Path if a sweep may write there: missing, empty, or a sweep directory
    (marked by ``sweep.json``); anything else is the user's and is refused untouched.

    Raises
    ------
    SweepError
        ``out`` is a file, or a directory that is neither empty nor a sweep directory, or a
        path the sweep writes (``cells``, a cell's record ``cells/*.json``, a summary) is of the
        wrong kind."""
    out = Path(out)
    marker = out / MARKER
    if out.exists() and not out.is_dir():
        raise SweepError(f"{out} is a file, not a sweep directory")
    if out.is_dir() and any(out.iterdir()) and not marker.exists():
        raise SweepError(f"{out} is not empty and not a sweep directory (it holds "
                         f"{describe_contents(out)}); use an empty or new directory")  # fmt: skip
    if marker.exists() and not _marked(out):
        raise SweepError(f"{marker} is not a conceptid sweep marker")
    if (out / "cells").exists() and not (out / "cells").is_dir():
        raise SweepError(f"{out / 'cells'} is not a directory; a sweep keeps its cells there")
    if (out / "cells").is_dir():
        for path in sorted((out / "cells").glob("*.json")):  # KEY.json and KEY.failed.json
            if path.is_dir():
                raise SweepError(f"{path} is a directory; a sweep writes a cell's record "
                                 "there (move it away)")  # fmt: skip
    for name in ("summary.csv", "summary.md", "summary.png"):
        if (out / name).is_dir():
            raise SweepError(f"{out / name} is a directory; a sweep writes its summary there")
    return out


def _marked(out: Path) -> bool:
    """Whether ``out`` holds a sweep's marker (``sweep.json`` of this format): a directory the
    package wrote, whose summaries are its own."""
    rec = probe_json(out / MARKER)
    return isinstance(rec, dict) and rec.get("format") == FORMAT


def _open_dir(out: Path, sweep: Sweep) -> Path:
    out = check_sweep_dir(out)
    marker = out / MARKER
    (out / "cells").mkdir(parents=True, exist_ok=True)
    _write_json(marker, {"format": FORMAT, "sweep": sweep.to_dict()})
    return out


def _json_text(obj) -> str:
    """A record's JSON text. NaN is allowed (an MCC can be undefined), unlike in
    rundir.write_json's."""
    return json.dumps(obj, indent=1, sort_keys=True) + "\n"


def _write_json(path: Path, obj) -> None:
    write_text(path, _json_text(obj))


def _finished(out: Path, cell: Cell) -> dict | None:
    """The cell's record if ``cells/KEY.json`` holds a finished result of this very cell; None
    (not finished: the cell runs again and its record is overwritten) for a missing,
    unreadable or malformed one."""
    path = out / "cells" / f"{cell.key}.json"
    rec = probe_json(path)
    if not isinstance(rec, dict) or rec.get("identity") != json.loads(_canonical(cell.identity())):
        return None
    seconds = rec.get("seconds")
    if not isinstance(rec.get("result"), Mapping) or not (
        isinstance(seconds, numbers.Real) and not isinstance(seconds, bool)
    ):
        return None
    return rec


class _Progress:
    """Cells done / running / failed, with tqdm's estimate of the time left."""

    def __init__(self, total: int, skipped: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=skipped, desc="sweep", unit="cell")
        self.failed = 0

    def update(self, running: int, failed: bool = False) -> None:
        self.failed += int(failed)
        if self.bar is not None:
            self.bar.set_postfix(running=running, failed=self.failed, refresh=False)
            self.bar.update(1)

    def say(self, line: str) -> None:
        """One line on stderr, above the bar when there is one."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


#: the schemes of a scheduler that workers on other machines reach: TCP, TLS (dask-jobqueue's
#: clusters with security on) and websockets
_SCHEMES = ("tcp", "tls", "ws", "wss")


def _check_scheduler(scheduler: str) -> None:
    """A Dask scheduler's network address, ``SCHEME://HOST:PORT`` with a scheme of
    :data:`_SCHEMES` (or ``HOST:PORT``, TCP), or a SweepError naming it (an in-process cluster
    is given as ``client=``)."""
    from distributed.comm import get_address_host_port

    if not isinstance(scheduler, str):
        raise SweepError(f"the scheduler address must be a string, got {scheduler!r}")
    scheme = scheduler.partition("://")[0] if "://" in scheduler else "tcp"
    what = f"{scheduler!r} is not a Dask scheduler address (tcp://HOST:PORT)"
    if scheme not in _SCHEMES:
        raise SweepError(f"{what}: scheme {scheme}:// is not supported, only "
                         f"{', '.join(f'{s}://' for s in _SCHEMES)}")  # fmt: skip
    try:
        host, port = get_address_host_port(scheduler)
    except (ValueError, TypeError) as e:
        raise SweepError(f"{what}: {e}") from None
    if not host or not 1 <= port <= 65535:
        raise SweepError(f"{what}: it needs a host and a port from 1 to 65535")


def _client(scheduler: str | None, workers: int, threads: int):
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            return Client(scheduler, timeout=_CONNECT_TIMEOUT), None
        except (OSError, TimeoutError) as e:
            raise SweepError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
        except (TypeError, ValueError) as e:  # tls:// without Dask's TLS configuration
            hint = "a tls:// scheduler needs Dask's distributed.comm.tls settings"
            msg = f"cannot reach the Dask scheduler at {scheduler}: {e} ({hint})"
            raise SweepError(msg) from None
    env = {v: str(threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                     "OPENBLAS_NUM_THREADS")}  # fmt: skip
    try:
        # preload: each worker runs this module's dask_setup (Ctrl-C is the client's)
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=":0", env=env,
                               preload=[__name__])  # fmt: skip
    except RuntimeError as e:  # the workers are spawned: they import the caller's __main__
        raise SweepError(f"could not start {workers} local Dask workers ({e}); in a script, "
                         "call run_sweep under `if __name__ == '__main__':`") from None  # fmt: skip
    try:
        return Client(cluster), cluster
    except BaseException:  # Ctrl-C while connecting, too: the workers do not outlive it
        cluster.close()
        raise


#: a Dask worker's states once it is shutting down
_CLOSING = {"closing", "closing_gracefully", "closed", "failed"}


def dask_setup(worker) -> None:
    """Dask's preload hook, run in each worker process of :func:`run_sweep`'s LocalCluster as
    it starts. Ctrl-C, which a terminal sends to every process of the sweep, is left to the
    client (the worker ignores SIGINT), which then closes the cluster; and the warnings of the
    worker's own shutdown (a cell cancelled mid-run) are not printed, nor a lost connection to
    the closing scheduler, nor a cell's exception with its traceback (Dask's ``Compute
    Failed`` block: the sweep writes it to the cell's ``.failed.json`` and prints one line
    for it): its other errors are."""
    import logging
    import signal

    from distributed.comm.core import CommClosedError

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def printed(record: logging.LogRecord) -> bool:
        # a connection the closing cluster dropped (a heartbeat to a scheduler already
        # stopped, measured under load): the sweep's own line says what happened
        lost = record.exc_info is not None and isinstance(record.exc_info[1], CommClosedError)
        if str(record.msg).startswith("Compute Failed"):  # a cell's own error: recorded
            return False
        return not lost and (record.levelno >= logging.ERROR
                             or worker.status.name not in _CLOSING)  # fmt: skip

    for handler in logging.getLogger("distributed").handlers:
        handler.addFilter(printed)


@contextmanager
def _quiet_shutdown(quiet: bool):
    """While an interrupted sweep's cluster closes (``quiet``), this process prints only the
    errors of Dask's ``distributed`` loggers, not the warnings of workers stopped mid-cell."""
    import logging

    def errors(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR

    # a filter, not a level: the cluster restores its handlers' levels as it closes
    handlers = list(logging.getLogger("distributed").handlers) if quiet else []
    for h in handlers:
        h.addFilter(errors)
    try:
        yield
    finally:
        for h in handlers:
            h.removeFilter(errors)


@holds_run_dir(lambda a: a["out"], "sweep directory", error=SweepError)
def run_sweep(
    sweep: Sweep,
    out: str | os.PathLike,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    client=None,
) -> SweepResult:
    """Run every cell of ``sweep`` not yet finished in ``out``; write each result atomically as
    it arrives, then the summary (:func:`aggregate`).

    ``scheduler``: the address of a running Dask scheduler; otherwise a ``LocalCluster`` of
    ``workers`` processes, one thread each, on loopback (by default :data:`WORKERS`; never
    more than the cells left to run, one more would idle). ``client``: an
    existing ``distributed.Client`` (the caller keeps it). The result's ``summary_files`` are
    the summaries written (see :func:`aggregate`).

    Raises
    ------
    SweepError
        ``out`` is neither empty nor a sweep directory, another command is running a sweep in
        it (:func:`conceptid.rundir.run_lock`), the scheduler's address is malformed or
        it cannot be reached, the task cannot be imported, or, for a local cluster, ``workers``
        (as many as the cells left to run) would exceed the
        memory limit (:data:`WORKER_BYTES` each; ``--max-memory`` of ``conceptid sweep``, the
        ``CONCEPTID_MAX_MEMORY`` environment variable, else the memory available): each
        before anything is written.
    """
    workers = WORKERS if workers is None else check_number(workers, "workers", error=SweepError)
    out = check_sweep_dir(out)
    _resolve(sweep.task)
    if scheduler is not None and client is None:
        _check_scheduler(scheduler)
    t0 = time.perf_counter()
    cells = sweep.cells()
    local = scheduler is None and client is None
    pending = [c for c in cells if _finished(out, c) is None]
    skipped = len(cells) - len(pending)
    failed: list[str] = []
    own, opened = None, False  # the local cluster started here; a client opened here
    if pending and client is None:  # connected before anything is written
        if local:
            workers = min(workers, len(pending))  # one more would idle
            _check_worker_memory(workers)
        client, own = _client(scheduler, workers, sweep.threads)
        opened = True
    interrupted = False
    try:
        out = _open_dir(out, sweep)
        if pending:
            bar = _Progress(len(cells), skipped, progress)
            try:
                failed = _run_pending(client, pending, out, sweep.retries, bar)
            finally:
                bar.close()
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        with _quiet_shutdown(interrupted and own is not None):
            if opened:  # the connection to a --scheduler too (the caller's client stays open)
                client.close()
            if own is not None:
                own.close()
    rows, written = _summarise(out, sweep)
    return SweepResult(out, len(cells), skipped, len(pending) - len(failed), failed,
                       time.perf_counter() - t0, rows, written)  # fmt: skip


def _check_worker_memory(workers: int) -> None:
    """Refuse local workers whose processes (:data:`WORKER_BYTES` each, before any cell's
    data) would exceed the memory limit, before any is started."""
    size = f"about {WORKER_BYTES / 2**30:.2g} GiB"
    if workers == 1:
        what = f"a LocalCluster of 1 worker process ({size} with torch loaded, before its data)"
    else:
        what = (f"a LocalCluster of {workers} worker processes ({size} each with torch loaded, "
                "before their cells' data)")  # fmt: skip
    advice = "ask for fewer workers" if workers > 1 else "free some memory"
    try:
        check_memory(workers * WORKER_BYTES, what, setting=_SETTING, advice=advice)
    except MemoryLimitError as e:
        raise SweepError(str(e)) from None


def _run_pending(client, pending: Sequence[Cell], out: Path, retries: int, bar) -> list[str]:
    from distributed import as_completed

    futures = {}
    for c in pending:
        payload = c.to_dict() | {"root": str(out.resolve())}
        fut = client.submit(_run_cell, payload, key=f"cell-{c.key}", retries=retries, pure=False)
        futures[fut] = c
    failed = []
    remaining = len(futures)
    for fut in as_completed(list(futures)):
        c = futures[fut]
        remaining -= 1
        running = min(remaining, len(client.scheduler_info().get("workers", {})))
        error = tb = None
        if fut.status == "finished":
            rec = fut.result()
            error = _record(out / "cells" / f"{c.key}.json", c, rec)
            if error is None:
                (out / "cells" / f"{c.key}.failed.json").unlink(missing_ok=True)
                bar.update(running)
                continue
        else:
            exc = fut.exception()
            error = f"{type(exc).__name__}: {exc}"
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        _write_json(out / "cells" / f"{c.key}.failed.json", {
            "identity": c.identity(), "cell": c.to_dict(), "error": error, "traceback": tb,
        })  # fmt: skip
        failed.append(c.key)
        said = " ".join(str(error).split())  # one line, whatever the error's text
        said = said if len(said) <= 300 else said[:297] + "..."
        bar.say(f"conceptid sweep: cell {c.label} ({c.method}, seed {c.seed}) failed: {said} "
                f"(cells/{c.key}.failed.json)")  # fmt: skip
        bar.update(running, failed=True)
    return failed


def _record(path: Path, cell: Cell, rec: Mapping) -> str | None:
    """Write a cell's record to ``path``; or, if its task broke its contract (a task returns
    a dict of metrics, which JSON can hold), write nothing and return the error (the cell
    failed: a rerun would only repeat it)."""
    result = rec["result"]
    if not isinstance(result, Mapping):
        return (f"TypeError: the task {cell.task} returned {type(result).__name__} "
                f"{_short(result)}; a task must return a dict of metrics")  # fmt: skip
    try:
        text = _json_text({
            "identity": cell.identity(), "cell": cell.to_dict(), "result": dict(result),
            "seconds": rec["seconds"], "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        })  # fmt: skip
    except (TypeError, ValueError, RecursionError) as e:
        return (f"TypeError: the task {cell.task} returned a dict that JSON cannot hold ({e}); "
                "a task must return a dict of metrics (numbers, text, lists)")  # fmt: skip
    write_text(path, text)
    return None


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------------------- summary


def _number(v) -> float | None:
    """``v`` as a float if it is a finite real number (not a bool), else None."""
    if isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


def _scalars(result: Mapping) -> dict[str, float]:
    """A cell's result's scalar metrics; anything else (None, text, a NaN) is left out."""
    out = {}
    for k, v in result.items():
        if (number := _number(v)) is not None:
            out[k] = number
        elif k == "r2" and isinstance(v, list):
            r2 = {f"r2[{i}]": _number(x) for i, x in enumerate(v)}
            out.update({name: x for name, x in r2.items() if x is not None})
        elif k == "noise_check" and isinstance(v, Mapping):  # conceptid.modelcheck, per part
            for part, nc in v.items():
                stat = _number(nc.get("statistic_per_dof")) if isinstance(nc, Mapping) else None
                if stat is not None:
                    out[f"noise_{part}_per_dof"] = stat
    return out


@holds_run_dir(lambda a: a["out"], "sweep directory", create=False, error=SweepError)
def aggregate(out: str | os.PathLike, sweep: Sweep) -> list[dict]:
    """Group finished cells over seeds: for each (benchmark, spec grid point, method, params)
    and each scalar metric, the mean, the standard error (``std / sqrt(n)``, ``ddof = 1``;
    ``None`` for one seed, an empty field of ``summary.csv``: one value has none) and the
    per-seed values. A grid point's values are the sweep's own (a spec
    field at its default value included). Writes ``summary.csv``, ``summary.md`` and, when the
    sweep has an axis to plot (``x``, else its first grid axis with several values) and a
    finished cell, ``summary.png`` (an axis of numbers as numbers, any other as categories in
    the grid's order); without a figure to draw, it removes the ``summary.png`` of an earlier
    run from a sweep directory (one marked by ``sweep.json``), which would contradict the
    tables. Returns the rows."""
    return _summarise(Path(out), sweep)[0]


def _summarise(out: Path, sweep: Sweep) -> tuple[list[dict], tuple[Path, ...]]:
    """:func:`aggregate`'s rows and the summary files it wrote, in the order csv, md, png."""
    groups: dict[str, dict] = {}  # one per benchmark, spec-grid point, method and params
    unfinished = []
    for c, sg in sweep._cells():
        rec = _finished(out, c)
        if rec is None:
            unfinished.append(_describe(c, sg).removeprefix("the cell "))
            continue
        gid = _canonical([c.label, sg, c.method, dict(c.params)])
        g = groups.setdefault(gid, {"benchmark": c.label, **sg, "method": c.method,
                                    **dict(c.params), "seeds": [], "metrics": {}})  # fmt: skip
        g["seeds"].append(c.seed)
        metrics = _scalars(rec["result"]) | {"seconds": float(rec["seconds"])}
        for k, v in metrics.items():
            g["metrics"].setdefault(k, {})[c.seed] = v
    rows = []
    for g in groups.values():
        for metric, per in g["metrics"].items():
            vals = np.array([per[s] for s in sorted(per)])
            se = float(vals.std(ddof=1) / np.sqrt(len(vals))) if len(vals) > 1 else None
            keys = {k: v for k, v in g.items() if k not in ("seeds", "metrics")}
            rows.append(keys | {"metric": metric, "mean": float(vals.mean()), "se": se,
                                "n": len(vals), "min": float(vals.min()), "max": float(vals.max()),
                                "per_seed": [float(v) for v in vals],
                                "seeds": sorted(per)})  # fmt: skip
    _write_csv(out / "summary.csv", rows)
    write_text(out / "summary.md", summary_markdown(rows, sweep, unfinished))
    written = (out / "summary.csv", out / "summary.md")
    grid = {**sweep.spec_grid, **sweep.params}
    axis = sweep.x or next((k for k, v in grid.items() if len(v) > 1), None)
    png = out / "summary.png"
    if axis is not None and rows:
        sweep_figure(rows, axis, png, title=sweep.name, order=grid.get(axis))
        written += (png,)
    elif png.is_file() and not png.is_symlink() and _marked(out):  # an earlier run's, stale
        png.unlink()  # (a link is never the package's: it writes the file itself)
    return rows, written


def _text(v) -> str:
    """A grid value in a table or a label: JSON for a list or an object, else as it reads."""
    return json.dumps(v, sort_keys=True) if isinstance(v, list | dict) else str(v)


def _write_csv(path: Path, rows: Iterable[dict]) -> None:
    rows = list(rows)
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for r in rows:
        w.writerow({k: (_text(v) if isinstance(v, list | dict) else v) for k, v in r.items()})
    write_text(path, buf.getvalue())


_SHOWN = (
    "mean_r2",
    "min_r2",
    "nll_gap",
    "composition_swd",
    "concept_swd",
    "score",
    "train_seconds",
    "seconds",
)


def summary_markdown(rows: Sequence[dict], sweep: Sweep, unfinished: Sequence[str] = ()) -> str:
    """One table row per group, one column per headline metric: ``mean +- se [per-seed]``; a
    group that some seeds did not finish says which seeds it holds (and has no standard error
    from one seed), and ``unfinished`` (the cells without a result: failed, or not run) are
    listed under the table."""
    metrics = [m for m in _SHOWN if any(r["metric"] == m for r in rows)]
    keys = ["benchmark", *sweep.spec_grid, "method", *sweep.params]
    by: dict[tuple, dict] = {}
    for r in rows:
        by.setdefault(tuple(_text(r.get(k)) for k in keys), {})[r["metric"]] = r
    lines = [f"# Sweep `{sweep.name}`", "",
             f"{len(sweep.seeds)} seeds {list(sweep.seeds)}; mean +- standard error "
             "[per-seed values]", "",
             *(f"{m} built with options {_canonical(o)}" + "  " for m, o in sweep.options.items()),
             *([""] if sweep.options else []),
             "| " + " | ".join(keys + metrics) + " |",
             "|" + " --- |" * (len(keys) + len(metrics))]  # fmt: skip
    for group, ms in by.items():
        cells = []
        for m in metrics:
            r = ms.get(m)
            if r is None:
                cells.append("")
                continue
            se = f"{r['se']:.2g}" if r["n"] > 1 else "n/a"
            text = f"{r['mean']:.4g} +- {se} [{', '.join(f'{v:.3g}' for v in r['per_seed'])}]"
            if r["n"] < len(sweep.seeds):
                text += f" (seeds {', '.join(map(str, r['seeds']))} only)"
            cells.append(text)
        lines.append("| " + " | ".join(list(group) + cells) + " |")
    if unfinished:
        lines += ["", f"{len(unfinished)} cell(s) without a result (failed, see "
                  "cells/*.failed.json, or not run), left out of the table:", ""]  # fmt: skip
        lines += [f"- {u}" for u in unfinished]
    return "\n".join(lines) + "\n"


def _line_styles(rows, keys, name_of, plt) -> dict[str, dict]:
    """Colour by the first varying grid key (the benchmark, usually), line style and marker by
    the rest (the method): a dozen lines stay told apart, where one colour each would repeat."""
    first = {name_of(r): json.dumps(r.get(keys[0])) if keys else "" for r in rows}
    rest = {name_of(r): json.dumps([r.get(k) for k in keys[1:]]) for r in rows}
    colours, others = sorted(set(first.values())), sorted(set(rest.values()))
    cmap = plt.get_cmap("tab10" if len(colours) <= 10 else "tab20")
    dashes, markers = ("-", "--", ":", "-."), ("o", "s", "^", "D")
    return {
        n: {
            "color": cmap(colours.index(first[n]) % cmap.N),
            "linestyle": dashes[others.index(rest[n]) % len(dashes)],
            "marker": markers[others.index(rest[n]) % len(markers)],
        }
        for n in first
    }


def _categories(values: Iterable, order: Sequence | None = None) -> list:
    """The distinct ``values`` (compared as JSON, so that ``True`` is not ``1``) in the order
    of ``order`` (the sweep's grid: the order it gives its values in), then any not in it in
    the order they come."""
    seen = {_canonical(v): v for v in values}
    first = [_canonical(v) for v in order or ()]
    ranked = [k for k in dict.fromkeys(first) if k in seen] + [k for k in seen if k not in first]
    return [seen[k] for k in ranked]


def sweep_figure(
    rows: Sequence[dict],
    axis: str,
    path: str | os.PathLike,
    title: str = "",
    order: Sequence | None = None,
) -> None:
    """One panel per headline metric against ``axis`` (log scale when its values are positive
    and span a factor of 10 or more; values that are not all numbers, such as presets or
    preset arguments, as categories in the order of ``order``, the grid's values of ``axis``,
    then in the order the rows give them): a line per benchmark and method (and any other grid
    value), the mean over seeds with its standard error, and every seed as a dot."""
    from .plots import pyplot, save_figure

    plt = pyplot()
    metrics = [
        m for m in _SHOWN if not m.endswith("seconds") and any(r["metric"] == m for r in rows)
    ]
    if not metrics:
        metrics = sorted({r["metric"] for r in rows})[:4]
    skip = {"metric", "mean", "se", "n", "min", "max", "per_seed", "seeds", axis}
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in skip]
    keys = [k for k in keys if len({json.dumps(r.get(k)) for r in rows}) > 1]  # what varies

    def name_of(r):
        return " ".join(_text(r.get(k)) for k in keys) or "all"

    names = sorted({name_of(r) for r in rows})
    style = _line_styles(rows, keys, name_of, plt)  # one look per line, the same in every panel
    values = [r[axis] for r in rows if r.get(axis) is not None]
    numeric = all(_number(v) is not None for v in values)
    # an axis of numbers is drawn as numbers; any other (presets, preset_args) as categories,
    # in the grid's order
    categories = [] if numeric else _categories(values, order)
    position = {_canonical(v): i for i, v in enumerate(categories)}

    def x_of(v) -> float:
        return float(v) if numeric else float(position[_canonical(v)])

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for ax, m in zip(axes[0], metrics, strict=True):
        lines: dict[str, list] = {}
        for r in rows:
            if r["metric"] == m and r.get(axis) is not None:
                lines.setdefault(name_of(r), []).append(r)
        for name, rs in sorted(lines.items()):
            rs = sorted(rs, key=lambda r: x_of(r[axis]))
            xs = np.array([x_of(r[axis]) for r in rs])
            ax.errorbar(xs, [r["mean"] for r in rs], yerr=[r["se"] or 0.0 for r in rs], capsize=3,
                        label=name, **style[name])  # fmt: skip
            for xv, r in zip(xs, rs, strict=True):
                ax.scatter([xv] * len(r["per_seed"]), r["per_seed"], s=8, alpha=0.5,
                           color=style[name]["color"])  # fmt: skip
        xs_all = [x_of(r[axis]) for r in rows if r["metric"] == m and r.get(axis) is not None]
        if not numeric:
            ax.set_xticks(range(len(categories)), [_text(v) for v in categories], fontsize=7,
                          rotation=20 if len(categories) > 3 else 0)  # fmt: skip
        elif xs_all and min(xs_all) > 0 and max(xs_all) >= 10 * min(xs_all):
            ax.set_xscale("log")
        ax.set_xlabel(axis)
        ax.set_title(m)
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], label=n, **style[n]) for n in names]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(names), 6), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 + 0.04 * ((len(names) - 1) // 6), 1, 1))
    save_figure(fig, path)
