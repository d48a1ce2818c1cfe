"""The two floors every SWD figure is read against.

A sliced Wasserstein distance between ``n`` generated and ``n`` data samples is never zero: two
independent samples of the *same* law are apart by the sampling floor. And a generator that
ignores the context labels pays at least the distance between the observational law and the
target context's law. So for each context ``k`` of a dataset with ground truth:

- ``same``: SWD between the test rows of ``k`` and a fresh draw of ``n`` samples from the true
  model under ``k`` (the best any generator can do at this sample size);
- ``observational``: SWD between the test rows of ``k`` and a fresh draw from the observational
  context (what ignoring the labels costs, at best);
- ``oracle_sem`` (on request, ``oracle=True``): SWD between the test rows of ``k`` and a draw
  from a linear Gaussian SEM fitted to the *true* concepts of the training rows (the true graph,
  known targets), passed through the true mixing. It is what composing costs when the concepts
  are recovered exactly and only the SEM is estimated from the training data at this size: a
  fitted model's excess over it is its recovery's error, not the estimation of the law
  (:func:`oracle_sem_sample`).

Fresh draws come from the dataset's ground-truth model with their own seed stream, and are put in
the same units as the evaluation data (the images scaled to ``[0, 1]``, vectors standardised by
the training split's normaliser).
"""

from __future__ import annotations

import numpy as np
import torch

from conceptid.models.metrics import sliced_wasserstein
from conceptid.simulations.benchmark import Dataset
from conceptid.simulations.errors import UsageError

__all__ = ["OracleSEM", "fresh_draw", "oracle_sem_sample", "swd_floors"]


def fresh_draw(ds: Dataset, context: int, n: int, seed: int, normaliser=None) -> np.ndarray:
    """``n`` new observations of context index ``context``, in evaluation units
    ``(n, *obs_shape)`` float32 (images ``(n, 3, H, W)`` in ``[0, 1]``)."""
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


def swd_floors(
    ds: Dataset, split, contexts, n: int, seed: int = 0, normaliser=None, *, oracle: bool = False
) -> dict[str, dict[str, float]]:
    """``{"same": {name: swd}, "observational": {name: swd}}`` for each context index in
    ``contexts``, against the rows of ``split`` (a :class:`conceptid.models.data.TensorData` in
    evaluation units) of that context, up to ``n`` of them; with ``oracle``, also
    ``"oracle_sem"`` (see the module docstring; :class:`OracleSEM` raises
    :class:`~conceptid.simulations.errors.UsageError` for a dataset it does not apply to, before
    any floor is computed)."""
    fitted = OracleSEM(ds) if oracle else None
    rng = np.random.default_rng(seed)
    observational = ds.observational_contexts
    obs = fresh_draw(ds, observational[0], n, seed, normaliser) if observational else None
    out: dict[str, dict[str, float]] = {"same": {}, "observational": {}}
    if fitted is not None:
        out["oracle_sem"] = {}
    for k in contexts:
        rows = (split.context == k).numpy()
        data = split.x[rows].numpy()
        data = data[rng.permutation(len(data))[:n]]
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
    its parents in the *true* graph, over the training rows of the contexts that do not target
    it (its mechanism holds there); its noise covariance is that of the residuals. Its law under
    a hard intervention is the sample mean and covariance of the block over the rows of the
    contexts that target it. Sampling under any target set is ancestral in the graph's order.

    Raises :class:`~conceptid.simulations.errors.UsageError` when this oracle does not apply:
    a dataset without a ground-truth model, an SEM that is not linear with Gaussian noise, a
    context with an intervention that is not hard, or a concept targeted by a held-out context
    but by no training context (its interventional law is never observed).
    """

    def __init__(self, ds: Dataset) -> None:
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
        by_name = {c.name: c for c in model.all_contexts}
        contexts = [by_name[name] for name in ds.context_names]
        for c in contexts:
            kinds = sorted({iv.kind for iv in c.interventions} - {"hard"})
            if kinds:
                raise UsageError(f"the oracle SEM floor needs hard interventions; context "
                                 f"{c.name!r} has {', '.join(kinds)}")  # fmt: skip
        self.targets = [{sem.resolve(t) for t in c.targets} for c in contexts]
        rows = ds.rows("train", "training")
        C = np.asarray(ds.concepts[rows], dtype=float)
        ctx = np.asarray(ds.context[rows])
        hit = np.array([[j in self.targets[k] for j in range(sem.m)] for k in ctx], dtype=bool)
        held = set(ds.held_out_contexts)
        sizes = np.asarray(sem.block_sizes)
        seen = hit.sum(0) > sizes  # enough rows for the block's mean and covariance
        needed = set().union(*(self.targets[k] for k in held)) if held else set()
        unseen = sorted(sem.names[j] for j in needed if not seen[j])
        if unseen:
            raise UsageError(f"the oracle SEM floor needs each held-out target intervened on in "
                             f"training; never intervened on: {', '.join(unseen)}")  # fmt: skip
        A = np.asarray(sem.graph.adjacency, dtype=bool)
        self.sem, self.order = sem, tuple(sem.graph.order)
        self.parents = [np.flatnonzero(A[:, j]) for j in range(sem.m)]
        self.mechanism: list[tuple] = []
        self.intervened: list[tuple | None] = []
        for j in range(sem.m):
            bj = sem.block(j)
            cols = np.concatenate([np.arange(sem.K)[sem.block(i)] for i in self.parents[j]]
                                  + [np.zeros(0, dtype=int)]).astype(int)  # fmt: skip
            keep = ~hit[:, j]
            X = np.column_stack([C[keep][:, cols], np.ones(keep.sum())])
            W = np.linalg.lstsq(X, C[keep, bj], rcond=None)[0]
            resid = C[keep, bj] - X @ W
            self.mechanism.append((cols, W, np.atleast_2d(np.cov(resid.T))))
            if seen[j]:
                block = C[hit[:, j], bj]
                self.intervened.append((block.mean(0), np.atleast_2d(np.cov(block.T))))
            else:
                self.intervened.append(None)

    def sample(self, targets, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` concept vectors ``(n, K)`` under the set of concept indices ``targets``."""
        sem = self.sem
        C = np.zeros((n, sem.K))
        for j in self.order:
            bj = sem.block(j)
            if j in targets:
                mean, cov = self.intervened[j]  # type: ignore[misc]
                C[:, bj] = rng.multivariate_normal(mean, cov, size=n)
            else:
                cols, W, cov = self.mechanism[j]
                X = np.column_stack([C[:, cols], np.ones(n)])
                C[:, bj] = X @ W + rng.multivariate_normal(np.zeros(len(cov)), cov, size=n)
        return C


def oracle_sem_sample(
    ds: Dataset, fitted: OracleSEM, context: int, n: int, seed: int, normaliser=None
) -> np.ndarray:
    """``n`` observations of context index ``context`` drawn from ``fitted``
    (:class:`OracleSEM`) through the dataset's true nuisance law and mixing, in evaluation
    units (as :func:`fresh_draw`)."""
    model = ds.model
    rng = np.random.default_rng([seed, context, 0x0AC1])
    c = fitted.sample(fitted.targets[context], n, rng)
    nuisance = model.nuisance_scale * rng.standard_normal((n, model.nuisance_dim))
    e = model.embed(c, nuisance)
    kw = {"progress": False} if model.mixing.kind == "image" else {}
    return _units(ds, np.asarray(model.mixing(e, **kw)), normaliser)
