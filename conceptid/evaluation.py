"""Evaluation: every metric of every trained method, as one result object the report takes.

:func:`evaluate` measures each method once (the alignment up to the proven class included) and
returns an :class:`Evaluation`: the content of ``metrics.json`` together with what the report
draws from (the alignments, the tensors, the trained models, the identifiability report).
:func:`evaluate_method` is the measurement of one model, as a plain dict.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from conceptid.identifiability import AlignResult, Report, align
from conceptid.identifiability.equivalence import align_min_rows
from conceptid.models.data import TensorData
from conceptid.models.metrics import active_dims, bits_per_dim, mcc, sliced_wasserstein
from conceptid.simulations.benchmark import BenchmarkSpec, Dataset, package_version
from conceptid.simulations.errors import UsageError
from conceptid.simulations.validation import check_number, torch_seed

from .config import DEFAULTS, REPORTED
from .errors import PipelineError
from .floors import OracleSEM, check_sample_count, swd_floors, swd_rows
from .methods import BENCHMARK_METHODS, METHODS
from .modelcheck import noise_check
from .splits import splits
from .training import Trained, generate_samples

__all__ = [
    "NO_GROUND_TRUTH",
    "Evaluation",
    "common_settings",
    "describe_floors",
    "evaluate",
    "evaluate_method",
    "floor_summary",
    "latent_means",
    "verdicts",
]

#: why a dataset without ground truth gets no recovery metrics (metrics.json and the report)
NO_GROUND_TRUTH = ("R^2, MCC and the concept scatter compare learned concepts with the true ones, "
                   "and this dataset has none (imported data): they are omitted, not computed "
                   "against missing data")  # fmt: skip


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` measured, and what the report draws from.

    Attributes
    ----------
    metrics : dict
        The content of ``metrics.json`` (every metric of every method, the settings, versions).
    trained : mapping of str to Trained
        The evaluated models, by method.
    alignments : mapping of str to AlignResult or None
        Each method's alignment up to the proven class (None without ground truth).
    splits : tuple
        ``(normaliser, [train, val, test, held_out])`` as from :func:`conceptid.splits.splits`.
    check : Report or None
        The identifiability report (None for a dataset without ground truth).
    n_generate : int
        Generated samples per context behind each SWD.
    """

    metrics: dict
    trained: Mapping[str, Trained]
    alignments: Mapping[str, AlignResult | None]
    splits: tuple
    check: Report | None
    n_generate: int

    @property
    def histories(self) -> dict[str, dict]:
        """Each method's training history."""
        return {name: t.history for name, t in self.trained.items()}


def verdicts(report: Report) -> dict:
    """Concept -> status (``*`` marks a verdict conditional on a cited theorem)."""
    return {c.concept: c.status + ("*" if c.conditional else "") for c in report.concepts}


def common_settings(settings: Sequence[dict]) -> dict:
    """Each of :data:`conceptid.config.REPORTED` with the value every method shares, None where
    they differ."""
    out = {}
    for key in REPORTED:
        values = {json.dumps(s.get(key)) for s in settings}
        out[key] = settings[0].get(key) if len(values) == 1 else None
    return out


@torch.no_grad()
def latent_means(model, x: torch.Tensor) -> np.ndarray:
    """The whole latent of ``x`` (posterior means for the VAEs; ``g(x)`` for the manifold MLE)."""
    return (model.encode(x) if hasattr(model, "encode") else model.encoder(x)[0]).numpy()


def _val_bits(model, val: TensorData, seed: int) -> tuple[float, str]:
    """Validation negative ELBO (VAEs, beta = 1) or manifold NLL, in bits per dimension."""
    from conceptid.models.mle import LatentFlowMLE, ManifoldMLE

    g = torch.Generator().manual_seed(torch_seed(seed))
    manifold = isinstance(model, ManifoldMLE | LatentFlowMLE)
    total, n = 0.0, 0
    model.eval()
    with torch.no_grad():
        for batch in val.batches(512, shuffle=False):
            if manifold:
                value = model.nll(batch.x, batch.targets).mean().item()
            else:
                _, logs = model.loss(batch, g)
                value = logs["nll"] + logs["kl"]
            total += value * len(batch)
            n += len(batch)
    kind = "manifold NLL" if manifold else "negative ELBO"
    return bits_per_dim(total / n, int(np.prod(val.x.shape[1:]))), kind


def _assignment(name: str) -> str:
    method = METHODS.get(name) or BENCHMARK_METHODS.get(name)
    if method is None:
        raise PipelineError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    return method.assignment


def _check_model(name: str, model) -> None:
    """Refuse a ``model`` of another class than the method ``name`` builds
    (:meth:`conceptid.methods.Method.builds`), naming both."""
    _assignment(name)  # an unknown method first
    registry = METHODS | BENCHMARK_METHODS
    method = registry[name]
    if method.builds(model):
        return
    its = sorted(k for k, m in registry.items() if m.model_class and m.builds(model))
    of = f" (a model of {' or '.join(its)})" if its else ""
    raise UsageError(f"the model is a {type(model).__name__}{of}, not a {name} model (a "
                     f"{method.model_class}); evaluate it under its own method")  # fmt: skip


def _check_n_generate(ds: Dataset, n_generate) -> int:
    """``n_generate`` when it is a positive integer and that many samples per context fit in
    memory (:func:`conceptid.floors.check_sample_count`)."""
    return check_sample_count(ds, n_generate, f"generating n_generate = {n_generate} samples "
                              "per context", name="n_generate")  # fmt: skip


def _measure(name: str, model, ds: Dataset, seed: int, n_generate: int,
             data_splits) -> tuple[dict, AlignResult | None]:  # fmt: skip
    """One model's metrics and its alignment (None without ground truth)."""
    _, (_, va, te, held) = data_splits
    res = None
    if ds.has_ground_truth:
        learned = model.concepts(te.x, te.targets).numpy()
        true = te.concepts.numpy()
        res = align(learned, true, ds.block_sizes, assignment=_assignment(name))
        # MCC pairs single coordinates, so it is not invariant under the mixing within a block
        # that the class allows: for block concepts it is not reported
        scalar = all(k == 1 for k in ds.block_sizes)
        mcc_value = (mcc(learned, true) if scalar and learned.shape[1] >= true.shape[1]
                     else None)  # fmt: skip
    latent = latent_means(model, te.x)
    masks = ds.target_mask()
    names = ds.context_names

    def swd(split: TensorData, k: int) -> float:
        t = torch.from_numpy(np.repeat(masks[k][None], n_generate, 0))
        gen = generate_samples(model, t, seed + k)
        return sliced_wasserstein(gen, swd_rows(split, k, n_generate, seed), seed=seed)

    concept_swd = {names[k]: swd(te, k) for k in ds.training_contexts}
    comp_swd = {names[k]: swd(held, k) for k in ds.held_out_contexts}
    bits, kind = _val_bits(model, va, seed)
    metrics = {
        "r2": None if res is None else [float(v) for v in res.r2],
        "mean_r2": None if res is None else float(np.mean(res.r2)),
        "mcc": None if res is None else mcc_value,
        "concept_swd": float(np.mean(list(concept_swd.values()))),
        "composition_swd": float(np.mean(list(comp_swd.values()))) if comp_swd else None,
        "concept_swd_per_context": concept_swd,
        "composition_swd_per_context": comp_swd,
        "bits_per_dim": bits,
        "bits_kind": kind,
        "active_dims": active_dims(latent),
        "latent_dims": int(latent.shape[1]),
        "r2_matrix": None if res is None else res.r2_matrix.tolist(),
        # needs no ground truth: is the model's exogenous noise independent in each context?
        "noise_check": {
            "training": noise_check(model, te, ds.training_contexts, names),
            "held_out": noise_check(model, held, ds.held_out_contexts, names),
        },
    }
    return metrics, res


def describe_floors(floors: dict) -> str:
    """One line of :func:`floor_summary`'s figures."""

    def f(v) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    c = floors["concept"]
    text = f"concept SWD same-law {f(c['same'])}, observational {f(c['observational'])}"
    comp = floors["composition"]
    if comp is not None:
        text += (f"; composition SWD same-law {f(comp['same'])}, observational "
                 f"{f(comp['observational'])}, oracle SEM {f(comp['oracle_sem'])}")  # fmt: skip
    return text


def evaluate_method(
    name: str, model, ds: Dataset, seed: int = 0, n_generate: int = DEFAULTS.n_generate,
    data_splits=None, *, normaliser=None,
) -> dict:  # fmt: skip
    """Recovery up to the class, MCC, concept and composition SWD, bits/dim, active dims, and
    the noise check (``noise_check``: :func:`conceptid.modelcheck.noise_check` on the test rows
    of the training contexts and of the held-out compositions; None for a model it does not
    apply to).

    ``data_splits``: as from :func:`conceptid.splits.splits` (default: computed here, with
    ``normaliser``, the model's, when given). For a dataset without ground truth (imported)
    only what the data can measure: concept SWD per training context, composition SWD on
    held-out contexts, bits per dimension and active dimensions; ``r2``, ``mean_r2``, ``mcc``
    and ``r2_matrix`` are None (:data:`NO_GROUND_TRUTH`).

    Raises
    ------
    PipelineError
        An unknown method.
    UsageError
        Before any work: ``model`` not of the class ``name`` builds (naming both), ``seed``
        not an integer >= 0, or ``n_generate`` not a positive integer.
    MemoryLimitError
        ``n_generate`` samples per context would not fit in memory.
    """
    _check_model(name, model)
    seed = check_number(seed, "seed", minimum=0)
    n_generate = _check_n_generate(ds, n_generate)
    data_splits = data_splits or splits(ds, normaliser)
    return _measure(name, model, ds, seed, n_generate, data_splits)[0]


def floor_summary(ds: Dataset, data_splits, n: int, seed: int) -> dict | None:
    """The reference SWDs every SWD of a run is read against (:mod:`conceptid.floors`), each the
    mean over contexts, on the test rows the SWDs use (:func:`conceptid.floors.swd_rows`):
    ``{"concept": {"same", "observational"}, "composition": {"same", "observational",
    "oracle_sem"} or None, "oracle_sem_not_applied": why not (or None), "test_rows": the fewest
    rows any of these SWDs is measured on, "seed"}``; a value is None where it does not apply.
    None for a dataset without ground truth (no model to draw fresh samples from)."""
    if not ds.has_ground_truth:
        return None
    norm, (_, _, te, held) = data_splits

    def means(floors: dict) -> dict:
        return {k: float(np.mean(list(v.values()))) for k, v in floors.items() if v}

    concept = means(swd_floors(ds, te, ds.training_contexts, n, seed, norm))
    concept.setdefault("observational", None)
    composition, reason = None, None
    if ds.held_out_contexts:
        try:
            oracle: OracleSEM | bool = OracleSEM(ds)
        except UsageError as err:
            oracle, reason = False, str(err)
        composition = means(swd_floors(ds, held, ds.held_out_contexts, n, seed, norm,
                                       oracle=oracle))  # fmt: skip
        composition.setdefault("observational", None)
        composition.setdefault("oracle_sem", None)
    counts = [min(n, int((split.context == k).sum())) for split, ids in
              ((te, ds.training_contexts), (held, ds.held_out_contexts)) for k in ids]  # fmt: skip
    return {"concept": concept, "composition": composition, "oracle_sem_not_applied": reason,
            "test_rows": min(counts), "seed": seed}  # fmt: skip


#: the fewest test rows of the training contexts that the evaluation measures on without ground
#: truth (they are what the SWDs and the likelihood read; with ground truth the alignment may need
#: more, :func:`~conceptid.identifiability.equivalence.align_min_rows`; below 500 a context's
#: figures are reported with a warning of their sampling error)
MIN_TEST_ROWS = 3


def check_test_rows(rows: int, block_sizes: Sequence[int] = ()) -> None:
    """Refuse ``rows`` test rows of the training contexts when the evaluation cannot measure on
    them: fewer than :data:`MIN_TEST_ROWS`, or, with ground truth (the concepts'
    ``block_sizes`` given), fewer than the alignment of the widest concept needs. Raises
    :class:`PipelineError` naming the count."""
    need = max(MIN_TEST_ROWS, align_min_rows(block_sizes)) if block_sizes else MIN_TEST_ROWS
    if rows < need:
        raise PipelineError(f"the training contexts hold {rows} test samples; the evaluation "
                            f"measures on them and needs at least {need} (more test samples "
                            f"per context: simulate --n-test, or the spec's n_test)")  # fmt: skip


def check_evaluable(ds: Dataset) -> None:
    """:func:`check_test_rows` for ``ds``: refused before any work when its training contexts
    hold too few test rows (``--n-test 0`` gives none).

    Raises
    ------
    PipelineError
        Naming the count.
    """
    rows = int((ds.mask("test") & np.isin(ds.context, ds.training_contexts)).sum())
    check_test_rows(rows, ds.block_sizes if ds.has_ground_truth else ())


def evaluate(
    ds: Dataset, trained: Mapping[str, Trained], *, spec: BenchmarkSpec | None = None,
    check_report: Report | None = None, n_generate: int = DEFAULTS.n_generate,
    data_splits=None, say: Callable[[str], None] | None = None,
) -> Evaluation:  # fmt: skip
    """Metrics of every trained method, each with the settings it was trained under, plus what
    reproduces them (no wall times: ``metrics.json`` is the same for the same command and seed).

    Each method is evaluated once, under its own training seed; the top-level settings are those
    every method shares (None where they differ).

    Parameters
    ----------
    ds : Dataset
    trained : mapping of str to Trained
        The models, by method (at least one).
    spec : BenchmarkSpec, optional
        The benchmark the run generated (default: the dataset's own spec, if any).
    check_report : Report, optional
        The identifiability report (its verdicts go into the metrics).
    n_generate : int
        Generated samples per context behind each SWD.
    data_splits : optional
        As from :func:`conceptid.splits.splits`; default: computed once with the first model's
        normaliser.
    say : callable, optional
        Called with one line per method as it is evaluated.

    Raises
    ------
    PipelineError
        No model given, or too few test rows (:func:`check_evaluable`).
    UsageError
        ``n_generate`` not a positive integer.
    MemoryLimitError
        ``n_generate`` samples per context would not fit in memory.
    """
    if not trained:
        raise PipelineError("nothing to evaluate: no trained model given")
    n_generate = _check_n_generate(ds, n_generate)
    check_evaluable(ds)
    data_splits = data_splits or splits(ds, next(iter(trained.values())).normaliser)
    per, alignments = {}, {}
    for name, t in trained.items():
        m, alignments[name] = _measure(name, t.model, ds, t.settings["seed"], n_generate,
                                       data_splits)  # fmt: skip
        m["training"] = dict(t.settings)
        per[name] = m
        if say is not None:
            comp = m["composition_swd"]
            recovery = (
                ""
                if m["mean_r2"] is None
                else f"mean R2 {m['mean_r2']:.3f}  MCC "
                f"{'n/a' if m['mcc'] is None else format(m['mcc'], '.3f')}  "
            )
            say(f"      {name:<15} {recovery}concept SWD {m['concept_swd']:.4f}  composition "
                f"SWD {'n/a' if comp is None else f'{comp:.4f}'}"
                + "".join(f"  noise check ({part}) p {nc['bonferroni_p']:.2g} "
                          f"({nc['statistic_per_dof']:.2f}/dof)"
                          for part, nc in m["noise_check"].items() if nc))  # fmt: skip
    floors = floor_summary(
        ds, data_splits, n_generate, min(t.settings["seed"] for t in trained.values())
    )
    if say is not None and floors is not None:
        say(f"      floors: {describe_floors(floors)}")
    spec = spec if spec is not None else ds.spec
    metrics = {
        "spec": None if spec is None else spec.to_dict(),
        "dataset": {"name": ds.name, "content_hash": ds.content_hash,
                    "ground_truth": ds.has_ground_truth},
        "omitted": None if ds.has_ground_truth else NO_GROUND_TRUTH,
        **common_settings([t.settings for t in trained.values()]),
        "concepts": ds.concept_names,
        "verdict": None if check_report is None else verdicts(check_report),
        "methods": per,
        "floors": floors,
        "versions": {
            "conceptid": package_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }  # fmt: skip
    return Evaluation(metrics=metrics, trained=dict(trained), alignments=alignments,
                      splits=data_splits, check=check_report, n_generate=n_generate)  # fmt: skip
