"""The floors every SWD figure is read against.

A sliced Wasserstein distance between ``n`` generated and ``n`` data samples is never zero: two
independent samples of the *same* law are apart by the sampling floor. And a generator that
ignores the context labels pays at least the distance between the observational law and the
target context's law. So for each context ``k`` of a dataset with ground truth:

- ``same``: SWD between the test rows of ``k`` and a fresh draw of ``n`` samples from the true
  model under ``k`` (about what a perfect generator scores at this sample size; one draw, so
  noisy too);
- ``observational``: SWD between the test rows of ``k`` and a fresh draw from the observational
  context (what a generator that ignores the labels and reproduces that law scores);
- ``oracle_sem`` (on request, ``oracle=True``): SWD between the test rows of ``k`` and a draw
  from a linear Gaussian SEM fitted to the *true* concepts of the training rows (the true graph,
  or a complete DAG in its order; the targets known), passed through the true mixing
  (:class:`OracleSEM`, :func:`oracle_sem_sample`). It is what composing costs when the concepts
  are recovered exactly and only the SEM's parameters are estimated from the training data at
  this size: a fitted model's excess over it is not that estimation, but its concepts (their
  recovery, or the causal order it gives them).

Fresh draws come from the dataset's ground-truth model with their own seed stream, and are put in
the same units as the evaluation data (the images scaled to ``[0, 1]``, vectors standardised by
the training split's normaliser).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

import numpy as np
import torch

from conceptid.models.metrics import sliced_wasserstein
from conceptid.simulations.benchmark import Dataset
from conceptid.simulations.errors import UsageError
from conceptid.simulations.resources import check_memory
from conceptid.simulations.validation import check_number, check_rng

from .methods import observation_shape
from .splits import Normaliser

__all__ = [
    "OracleSEM",
    "check_sample_count",
    "fresh_draw",
    "oracle_sem_sample",
    "swd_floors",
    "swd_rows",
]

#: projections of every SWD (:func:`~conceptid.models.metrics.sliced_wasserstein`'s default)
_PROJECTIONS = 200
#: how a memory limit is set for these functions (besides the environment variable)
MEMORY_SETTING = "--max-memory on the command line"


def check_sample_count(ds: Dataset, n: object, what: str, name: str = "n") -> int:
    """``n`` as an int, when it is a positive integer and drawing ``n`` observations of ``ds``
    in evaluation units (or generating them from a model of it) and measuring an SWD on them
    fits in memory (:func:`~conceptid.simulations.resources.check_memory`). The estimate per
    row is rough: the draw's values in float64 with the renderer's or the mixing's
    temporaries and their float32 copies (about 40 bytes per observed value), the latent,
    and the SWD's projections of both sample sets.

    Raises
    ------
    UsageError
        ``n`` is not a positive integer (the message starts with ``name``).
    MemoryLimitError
        The draw would not fit (naming ``what``).
    """
    n = check_number(n, name)
    values = math.prod(ds.x.shape[1:])
    latent = sum(ds.block_sizes) + ds.nuisance_dim
    check_memory(n * (40 * values + 24 * latent + 2 * 16 * _PROJECTIONS), what,
                 setting=MEMORY_SETTING)  # fmt: skip
    return n


def _check_draw(ds: Dataset, context, n, seed, normaliser) -> tuple[int, int, int]:
    """``(context index, n, seed)`` of a draw of ``n`` observations of ``context`` (a name or an
    index of ``ds``), after every check of :func:`fresh_draw`'s arguments."""
    if not isinstance(ds, Dataset):
        raise UsageError(f"ds must be a Dataset, got {type(ds).__name__}")
    k = ds.context_index(context)
    seed = check_number(seed, "seed", minimum=0)
    _check_normaliser(ds, normaliser)
    n = check_sample_count(ds, n, f"drawing {n} samples of context {ds.context_names[k]!r}")
    return k, n, seed


def _check_normaliser(ds: Dataset, normaliser) -> None:
    if normaliser is None:
        return
    if not isinstance(normaliser, Normaliser):
        raise UsageError(f"normaliser must be a conceptid.splits.Normaliser or None, got "
                         f"{type(normaliser).__name__}")  # fmt: skip
    if normaliser.mean is None:  # the identity (images)
        return
    own, shape = tuple(normaliser.mean.shape), observation_shape(ds)
    if ds.is_image or own != shape:
        hint = " (images take none)" if ds.is_image else ""
        raise UsageError(f"normaliser is of observations of shape {own}; this dataset's are "
                         f"{shape}{hint}")  # fmt: skip


def fresh_draw(ds: Dataset, context: int | str, n: int, seed: int,
               normaliser: Normaliser | None = None) -> np.ndarray:  # fmt: skip
    """``n`` new observations of context ``context`` (an index or a name of ``ds``), in
    evaluation units ``(n, *obs_shape)`` float32 (images ``(n, 3, H, W)`` in ``[0, 1]``);
    vectors standardised by ``normaliser`` (a :class:`~conceptid.splits.Normaliser`) when given.

    Raises
    ------
    UsageError
        ``ds`` not a Dataset, ``n`` not a positive integer, ``seed`` not an integer >= 0, or a
        ``normaliser`` that is not one of this dataset's observations.
    DatasetError
        An unknown context name or an index out of range
        (:meth:`~conceptid.simulations.benchmark.Dataset.context_index`), or a dataset without
        a ground-truth model (imported).
    MemoryLimitError
        The draw would not fit in memory (:func:`check_sample_count`).
    """
    context, n, seed = _check_draw(ds, context, n, seed, normaliser)
    model = ds.model
    name = ds.context_names[context]
    rng = np.random.default_rng([seed, context, 0xF100])
    return _units(ds, np.asarray(model.sample(model.context(name), n, rng).x), normaliser)


def _units(ds: Dataset, x: np.ndarray, normaliser=None) -> np.ndarray:
    """Observations of the dataset's model in evaluation units (as :func:`fresh_draw`)."""
    if ds.is_image:  # stored as round(255 * image): the same quantisation here
        from conceptid.simulations.render import to_uint8

        x = to_uint8(x)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).astype(np.float32) / 255.0
    x = torch.as_tensor(x, dtype=torch.float32)
    if normaliser is not None and normaliser.mean is not None:
        x = (x - normaliser.mean) / normaliser.std
    return x.numpy()


def _check_split(split) -> None:
    if not all(hasattr(split, k) for k in ("x", "context")):  # a TensorData's
        raise UsageError(f"split must be a TensorData (conceptid.models.data), got "
                         f"{type(split).__name__}")  # fmt: skip


def swd_rows(split, context: int, n: int, seed: int) -> np.ndarray:
    """The rows of ``split`` (a :class:`conceptid.models.data.TensorData`) of context index
    ``context`` that an SWD of ``n`` samples is measured on: all of them, or ``n`` chosen by a
    generator of ``(seed, context)``. Every SWD of a run and its floors use these rows.

    Raises
    ------
    UsageError
        ``split`` not a TensorData, ``context`` not an integer >= 0, ``n`` not a positive
        integer, or ``seed`` not an integer >= 0.
    """
    _check_split(split)
    context = check_number(context, "context (an index)", minimum=0)
    n = check_number(n, "n")
    seed = check_number(seed, "seed", minimum=0)
    data = split.x[(split.context == context).numpy()].numpy()
    if len(data) <= n:
        return data
    return data[np.random.default_rng([seed, context]).permutation(len(data))[:n]]


def swd_floors(
    ds: Dataset,
    split,
    contexts,
    n: int,
    seed: int = 0,
    normaliser=None,
    *,
    oracle: bool | OracleSEM = False,
) -> dict[str, dict[str, float]]:
    """``{"same": {name: swd}, "observational": {name: swd}}`` for each context index in
    ``contexts``, against the rows of ``split`` (a :class:`conceptid.models.data.TensorData` in
    evaluation units) of that context, up to ``n`` of them; with ``oracle`` (True, or an
    :class:`OracleSEM` already fitted to ``ds``), also ``"oracle_sem"`` (see the module
    docstring; :class:`OracleSEM` raises :class:`~conceptid.simulations.errors.UsageError` for
    a dataset it does not apply to, before any floor is computed). A context may be given by
    name too; the floors are keyed by name.

    Raises
    ------
    UsageError
        Before any floor is computed: ``ds`` not a Dataset; ``contexts`` not a sequence (one
        context: ``[k]``); ``split`` not a TensorData of this dataset's observations, or holding
        no row of a context asked for; ``n``, ``seed`` or ``normaliser`` as
        :func:`fresh_draw` refuses them; ``oracle`` neither a bool nor an :class:`OracleSEM`, or
        one fitted on another dataset.
    DatasetError
        An unknown context name or an index out of range, or a dataset without a ground-truth
        model.
    MemoryLimitError
        The draws would not fit in memory (:func:`check_sample_count`).
    """
    if not isinstance(ds, Dataset):
        raise UsageError(f"ds must be a Dataset, got {type(ds).__name__}")
    if isinstance(contexts, str | bytes) or not isinstance(contexts, Iterable):
        raise UsageError(f"contexts must be a sequence of context names or indices, got "
                         f"{contexts!r} (one context: [k], not k)")  # fmt: skip
    ids = [ds.context_index(k) for k in contexts]
    _check_split(split)
    shape = observation_shape(ds)
    if tuple(split.x.shape[1:]) != shape:
        raise UsageError(f"split holds observations of shape {tuple(split.x.shape[1:])}; this "
                         f"dataset's are {shape} in evaluation units")  # fmt: skip
    present = set(np.unique(np.asarray(split.context)).tolist())
    empty = [ds.context_names[k] for k in ids if k not in present]
    if empty:
        raise UsageError(f"split holds no rows of context(s) {empty}: no SWD can be measured "
                         f"against them")  # fmt: skip
    for k in ids[:1] or ds.observational_contexts[:1]:  # the draws' checks, once
        _check_draw(ds, k, n, seed, normaliser)
    if isinstance(oracle, OracleSEM):
        _check_fitted(ds, oracle)
    elif not isinstance(oracle, bool | np.bool_):
        raise UsageError(f"oracle must be True, False or an OracleSEM, got {oracle!r}")
    fitted = oracle if isinstance(oracle, OracleSEM) else OracleSEM(ds) if oracle else None
    observational = ds.observational_contexts
    obs = fresh_draw(ds, observational[0], n, seed, normaliser) if observational else None
    out: dict[str, dict[str, float]] = {"same": {}, "observational": {}}
    if fitted is not None:
        out["oracle_sem"] = {}
    for k in ids:
        data = swd_rows(split, k, n, seed)
        name = ds.context_names[k]
        out["same"][name] = sliced_wasserstein(fresh_draw(ds, k, n, seed, normaliser), data,
                                               seed=seed)  # fmt: skip
        if obs is not None:  # a design without an observational context has no such floor
            out["observational"][name] = sliced_wasserstein(obs, data, seed=seed)
        if fitted is not None:
            drawn = oracle_sem_sample(ds, fitted, k, n, seed, normaliser)
            out["oracle_sem"][name] = sliced_wasserstein(drawn, data, seed=seed)
    return out


class OracleSEM:
    """A linear Gaussian SEM fitted to the true concepts of a dataset's training rows.

    Each concept block ``j`` is regressed, by least squares with an intercept, on the blocks of
    its parents, over the training rows of the contexts that do not target it (its mechanism
    holds there); its noise covariance is that of the residuals. The parents are those of the
    *true* graph (``graph="true"``, default) or every block before ``j`` in the true graph's
    topological order (``graph="complete"``: the order is given, the edges are estimated). Each
    hard intervention's law is the sample mean and covariance of its block over the rows of the
    training contexts that apply that same intervention (same target, law and family).
    Sampling under any context of the dataset is ancestral in the graph's order.

    Raises :class:`~conceptid.simulations.errors.UsageError` when this oracle does not apply,
    before anything is sampled: a dataset without a ground-truth model, an SEM that is not
    linear with Gaussian noise, an intervention that is not hard or not Gaussian, a context
    (training or held out) whose intervention no training context applies, or too few training
    rows to fit a mechanism or an intervention's law; and ``ds`` that is not a Dataset.

    Attributes
    ----------
    content_hash : str
        The content hash of the dataset it was fitted on: :func:`oracle_sem_sample` and
        :func:`swd_floors` refuse it for another.
    """

    def __init__(self, ds: Dataset, graph: str = "true") -> None:
        if not isinstance(ds, Dataset):
            raise UsageError(f"ds must be a Dataset, got {type(ds).__name__}")
        if not isinstance(graph, str) or graph not in ("true", "complete"):
            raise UsageError(f"graph must be 'true' or 'complete', got {graph!r}")
        if not ds.has_ground_truth:
            raise UsageError("the oracle SEM floor needs a dataset with a ground-truth model")
        model = ds.model
        sem = model.sem
        fams = sem.noise_family
        fams = [fams] if isinstance(fams, str) else list(fams)
        if sem.mechanism != "linear" or any(f != "gaussian" for f in fams):
            raise UsageError(
                "the oracle SEM floor fits a linear Gaussian SEM; this dataset's SEM has "
                f"mechanism {sem.mechanism!r} and noise {sorted(set(fams))}"
            )
        self.content_hash = ds.content_hash
        by_name = {c.name: c for c in model.all_contexts}
        contexts = [by_name[name] for name in ds.context_names]
        held = set(ds.held_out_contexts)
        #: per context index: {concept index: the key of its intervention's law}
        self.laws: list[dict[int, str]] = []
        for c in contexts:
            laws = {}
            for iv in c.interventions:
                if iv.kind != "hard" or iv.family != "gaussian":
                    what = iv.kind if iv.kind != "hard" else f"hard with {iv.family} noise"
                    raise UsageError(f"the oracle SEM floor needs hard Gaussian interventions; "
                                     f"context {c.name!r} has {what}")  # fmt: skip
                laws[sem.resolve(iv.target)] = json.dumps(iv.to_dict(), sort_keys=True)
            self.laws.append(laws)
        rows = ds.rows("train", "training")
        C = np.asarray(ds.concepts[rows], dtype=float)
        ctx = np.asarray(ds.context[rows])
        order = tuple(sem.graph.order)
        A = np.asarray(sem.graph.adjacency, dtype=bool)
        if graph == "complete":
            A = np.zeros_like(A)
            for a, i in enumerate(order):
                A[list(order[:a]), i] = True
        self.sem, self.order = sem, order
        cols_of = [np.arange(sem.K)[sem.block(i)] for i in range(sem.m)]
        targeted = np.zeros((len(contexts), sem.m), dtype=bool)
        for k, laws in enumerate(self.laws):
            targeted[k, list(laws)] = True
        hit = targeted[ctx]  # (rows, m): the row's context targets the concept
        self.mechanism: list[tuple] = []
        for j in range(sem.m):
            cols = np.concatenate([cols_of[i] for i in np.flatnonzero(A[:, j])]
                                  + [np.zeros(0, dtype=int)]).astype(int)  # fmt: skip
            keep = ~hit[:, j]
            need = len(cols) + 1 + sem.block_sizes[j]
            if keep.sum() <= need:
                raise UsageError(f"the oracle SEM floor fits the mechanism of {sem.names[j]} on "
                                 f"the training rows of contexts that do not target it: "
                                 f"{int(keep.sum())} rows, need more than {need}")  # fmt: skip
            X = np.column_stack([C[keep][:, cols], np.ones(keep.sum())])
            W = np.linalg.lstsq(X, C[keep][:, cols_of[j]], rcond=None)[0]
            resid = C[keep][:, cols_of[j]] - X @ W
            self.mechanism.append((cols, W, np.atleast_2d(np.cov(resid.T))))
        #: per intervention's key: (mean, covariance) of its block over the rows applying it
        self.intervened: dict[str, tuple] = {}
        for k in sorted(set(range(len(contexts))) - held):
            for j, key in self.laws[k].items():
                if key in self.intervened:
                    continue
                applies = np.array([laws.get(j) == key for laws in self.laws])
                block = C[applies[ctx]][:, cols_of[j]]
                if len(block) <= sem.block_sizes[j]:
                    raise UsageError(f"the oracle SEM floor estimates the intervention on "
                                     f"{sem.names[j]} of context {contexts[k].name!r} from "
                                     f"{len(block)} training rows, need more than "
                                     f"{sem.block_sizes[j]}")  # fmt: skip
                self.intervened[key] = (block.mean(0), np.atleast_2d(np.cov(block.T)))
        for k in sorted(held):
            unseen = sorted(sem.names[j] for j, key in self.laws[k].items()
                            if key not in self.intervened)  # fmt: skip
            if unseen:
                raise UsageError(f"the oracle SEM floor needs each intervention of held-out "
                                 f"context {contexts[k].name!r} applied in training; not "
                                 f"applied: {', '.join(unseen)}")  # fmt: skip

    def sample(self, context: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` concept vectors ``(n, K)`` under the dataset's context index ``context``.

        Raises
        ------
        UsageError
            ``context`` not an index of the dataset's contexts, ``n`` not a positive integer,
            or ``rng`` not a :class:`numpy.random.Generator`.
        MemoryLimitError
            The draw would not fit in memory.
        """
        sem = self.sem
        context = check_number(context, "context (an index)", minimum=0)
        if context >= len(self.laws):
            raise UsageError(f"context index {context} outside 0..{len(self.laws) - 1}")
        n = check_number(n, "n")
        check_rng(rng)
        check_memory(4 * 8 * n * (sem.K + 1), f"drawing {n} concept vectors",
                     setting=MEMORY_SETTING)  # fmt: skip
        laws = self.laws[context]
        C = np.zeros((n, sem.K))
        for j in self.order:
            bj = sem.block(j)
            if j in laws:
                mean, cov = self.intervened[laws[j]]
                C[:, bj] = rng.multivariate_normal(mean, cov, size=n, method="cholesky")
            else:
                cols, W, cov = self.mechanism[j]
                X = np.column_stack([C[:, cols], np.ones(n)])
                noise = rng.multivariate_normal(np.zeros(len(cov)), cov, size=n,
                                                method="cholesky")  # fmt: skip
                C[:, bj] = X @ W + noise
        return C


def _check_fitted(ds: Dataset, fitted) -> None:
    """Refuse ``fitted`` unless it is an :class:`OracleSEM` fitted on ``ds``."""
    if not isinstance(fitted, OracleSEM):
        raise UsageError(f"the oracle must be an OracleSEM (fitted: OracleSEM(ds)), got "
                         f"{type(fitted).__name__}")  # fmt: skip
    if fitted.content_hash != ds.content_hash:
        raise UsageError(f"this OracleSEM was fitted on another dataset (content hash "
                         f"{fitted.content_hash[:12]}..., this one {ds.content_hash[:12]}...); "
                         f"fit one on this dataset: OracleSEM(ds)")  # fmt: skip


def oracle_sem_sample(
    ds: Dataset, fitted: OracleSEM, context: int | str, n: int, seed: int,
    normaliser: Normaliser | None = None,
) -> np.ndarray:  # fmt: skip
    """``n`` observations of context index ``context`` drawn from ``fitted``
    (:class:`OracleSEM`, fitted on ``ds``) through the dataset's true nuisance law and mixing,
    in evaluation units (as :func:`fresh_draw`; ``context`` an index or a name).

    Raises
    ------
    UsageError
        ``fitted`` not an :class:`OracleSEM` or fitted on another dataset; the other
        arguments as :func:`fresh_draw` refuses them.
    DatasetError
        An unknown context name or an index out of range.
    MemoryLimitError
        The draw would not fit in memory (:func:`check_sample_count`).
    """
    context, n, seed = _check_draw(ds, context, n, seed, normaliser)
    _check_fitted(ds, fitted)
    model = ds.model
    rng = np.random.default_rng([seed, context, 0x0AC1])
    c = fitted.sample(context, n, rng)
    nuisance = model.nuisance_scale * rng.standard_normal((n, model.nuisance_dim))
    e = model.embed(c, nuisance)
    kw = {"progress": False} if model.mixing.kind == "image" else {}
    return _units(ds, np.asarray(model.mixing(e, **kw)), normaliser)
