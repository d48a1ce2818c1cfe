"""A check of a fitted model that needs no ground truth: is its exogenous noise independent?

A model with a per-context prior says more than "these are the concepts": it says that, in every
context ``k`` with targets ``T_k``, inverting the prior on the learned concepts gives exogenous
noise that is ``N(0, I)`` (and the nuisance coordinates too). Independence is the part of that
claim that an entangled representation breaks. When a learned concept mixes in part of another,
no hard intervention cuts it from what it mixed in: the prior explains the mixture with an edge,
and that edge is wrong in the context that intervenes on the concept, where the two noises come
out correlated.

The check is one-sided: a small p-value says the model is wrong in some context; a large one
certifies nothing. It tests the fitted model, not a tolerance: with 500 rows a context it also
detects the estimation error of a law fitted to 2000 samples a context, so read
``statistic_per_dof`` (about 1 when the noise is independent) as a graded measure. Measured
(docs/benchmarks.md, "The noise check"): on the held-out compositions of the linear rung L1,
fits at 1.13x and 1.28x the same-law floor score 2.0 and 2.1 per degree of freedom; on the
leaky-ReLU rung L3, fits at 1.50x-5.54x score 4.5-20.9. On the training contexts it tells
L3's hard dataset (seed 2: 4.1-4.3 in four fits) from the others (1.1-2.9 in seven fits of
seeds 0 and 1). It does not rank the fits of one dataset by how well they compose, and a fit
that lost a concept scored no worse than its siblings.

:func:`bartlett` is Bartlett's test of sphericity: for ``n`` rows of ``d`` jointly Gaussian
coordinates with correlation matrix estimate ``R``, ``-(n - 1 - (2d + 5)/6) log det R`` is
asymptotically chi-squared with ``d(d - 1)/2`` degrees of freedom when the coordinates are
independent (Bartlett, JRSS B 1950). Under the model the noise *is* Gaussian, so the test's
assumption is the model's own. :func:`noise_check` runs it per context.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import stats

from conceptid.models.data import TensorData
from conceptid.simulations.errors import UsageError

__all__ = ["bartlett", "noise_check"]


def bartlett(e: np.ndarray) -> dict:
    """Bartlett's test that the ``d`` columns of ``e`` ``(n, d)`` are uncorrelated.

    Returns ``{"n", "statistic", "dof", "p_value", "max_abs_corr"}``. Raises
    :class:`~conceptid.simulations.errors.UsageError` for fewer than two columns, fewer rows than
    ``d + 3``, non-finite values or a constant column."""
    e = np.asarray(e, dtype=np.float64)
    if e.ndim != 2 or e.shape[1] < 2:
        raise UsageError(f"bartlett needs (n, d) rows with d >= 2 columns, got shape {e.shape}")
    n, d = e.shape
    if n < d + 3:
        raise UsageError(f"bartlett needs at least {d + 3} rows for {d} columns, got {n}")
    if not np.isfinite(e).all():
        raise UsageError("bartlett: the rows hold NaN or infinite values")
    if (e.std(0) == 0).any():
        raise UsageError("bartlett: a column is constant (its correlations are undefined)")
    R = np.corrcoef(e, rowvar=False)
    logdet = np.linalg.slogdet(R)[1]
    statistic = max(0.0, -(n - 1 - (2 * d + 5) / 6) * logdet)
    dof = d * (d - 1) // 2
    off = np.abs(R[~np.eye(d, dtype=bool)])
    return {"n": int(n), "statistic": float(statistic), "dof": int(dof),
            "p_value": float(stats.chi2.sf(statistic, dof)),
            "max_abs_corr": float(off.max())}  # fmt: skip


def noise_check(model, split: TensorData, contexts: Sequence[int], names: Sequence[str],
                max_rows: int | None = None) -> dict | None:  # fmt: skip
    """Bartlett's test on the model's exogenous noise (``model.exogenous``) in each context.

    ``split``: rows (normalised as the model's inputs); ``contexts``: the context indices to test,
    ``names`` their names by index; ``max_rows``: at most this many rows per context (the first).
    Returns ``{"contexts": {name: bartlett(...)}, "min_p": ..., "bonferroni_p": min(1, min_p *
    number of contexts), "statistic_per_dof": the statistics summed over the contexts over their
    degrees of freedom summed (about 1 when the noise is independent; a graded measure where the
    p-values all underflow), "skipped": {name: why}}`` (a context whose noise holds non-finite
    values or a constant coordinate is skipped, with the reason), or None when the model has no
    exogenous noise to test (no per-context prior, or a single coordinate), or no context has
    enough rows.
    """
    if not callable(getattr(model, "exogenous", None)):
        return None
    out, skipped = {}, {}
    for k in contexts:
        rows = torch.nonzero(split.context == k).flatten()
        if max_rows is not None:
            rows = rows[:max_rows]
        if len(rows) == 0:
            continue
        with torch.no_grad():
            eps = model.exogenous(split.x[rows], split.targets[rows]).cpu().numpy()
        if eps.shape[1] < 2 or len(rows) < eps.shape[1] + 3:
            continue
        try:
            out[names[k]] = bartlett(eps)
        except UsageError as err:  # a collapsed or diverged model: said, not raised
            skipped[names[k]] = str(err)
    if not out:
        return None
    min_p = min(v["p_value"] for v in out.values())
    ratio = sum(v["statistic"] for v in out.values()) / sum(v["dof"] for v in out.values())
    return {"contexts": out, "min_p": min_p, "bonferroni_p": min(1.0, min_p * len(out)),
            "statistic_per_dof": ratio, "skipped": skipped}  # fmt: skip
