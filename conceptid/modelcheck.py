"""A check of a fitted model that needs no ground truth: is its exogenous noise independent?

A model with a per-context prior says more than "these are the concepts": it says that, in every
context ``k`` with targets ``T_k``, inverting the prior on the learned concepts gives exogenous
noise that is ``N(0, I)`` (and the nuisance coordinates too). Independence is the part of that
claim that an entangled representation breaks. When a learned concept mixes in part of another,
no hard intervention cuts it from what it mixed in: the prior explains the mixture with an edge,
and that edge is wrong in the context that intervenes on the concept, where the two noises come
out correlated.

For the theorem-matched VAE the noise comes from one draw of the encoder's posterior per row,
not from its mean: when posterior and prior agree, the draws of a context follow that context's
prior, while the means are shrunk and correlated even then. A rejection there says that the
encoder and the prior disagree in that context, a fault of the fitted model as a whole. The
paper's context-module VAE is skipped: its context-free encoder cannot give independent noise in
every context, whatever its concepts (``ContextModuleVAE.exogenous``).

The check is one-sided: a small p-value says the model is wrong in some context; a large one
certifies nothing. Only the independence part of the claim is tested (correlations: a wrong
mean or variance passes), on the concepts' and the nuisance's coordinates together. Measured
(docs/benchmarks.md, "The noise check"), as Bartlett's statistics summed over contexts over
their degrees of freedom (about 1 when the noise is independent): the oracle of
:mod:`conceptid.floors` (exact recovery, a linear Gaussian SEM fitted to 2000 training rows a
context) scores 0.70-1.25 on the training contexts and 1.05-1.14 on the held-out compositions;
fitted models score more on the held-out compositions: 2.0-2.1 on the linear rung L1 (fits at
1.13x-1.28x the same-law floor, R^2 0.998), 4.5-20.9 on the leaky-ReLU rung L3. It grades
rungs and datasets; it does not rank the fits of one dataset by how well they compose, and a
fit that lost a concept had the lowest held-out figure of its dataset.

:func:`bartlett` is Bartlett's test of sphericity: for ``n`` rows of ``d`` jointly Gaussian
coordinates with correlation matrix estimate ``R``, ``-(n - 1 - (2d + 5)/6) log det R`` is
asymptotically chi-squared with ``d(d - 1)/2`` degrees of freedom when the coordinates are
independent (Bartlett, British Journal of Statistical Psychology 1950; the factor
``(2d + 5)/6``: Bartlett, JRSS B 1954). Under the model the noise *is* Gaussian, so the test's
assumption is the model's own. :func:`noise_check` runs it per context.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
import torch
from scipy import stats

from conceptid.models.data import TensorData
from conceptid.simulations.errors import UsageError

__all__ = ["applies_to", "bartlett", "noise_check"]


def bartlett(e: np.ndarray) -> dict:
    """Bartlett's test that the ``d`` columns of ``e`` ``(n, d)`` are uncorrelated.

    Returns ``{"n", "statistic", "dof", "p_value", "max_abs_corr"}``. Raises
    :class:`~conceptid.simulations.errors.UsageError` for fewer than two columns, fewer rows than
    ``d + 3``, non-finite values, a constant column or linearly dependent columns (the
    statistic would be infinite)."""
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
    sign, logdet = np.linalg.slogdet(R)
    if sign <= 0 or not np.isfinite(logdet):
        raise UsageError("bartlett: the columns are linearly dependent (a singular correlation "
                         "matrix: the statistic is infinite)")  # fmt: skip
    statistic = max(0.0, -(n - 1 - (2 * d + 5) / 6) * logdet)
    dof = d * (d - 1) // 2
    off = np.abs(R[~np.eye(d, dtype=bool)])
    return {"n": int(n), "statistic": float(statistic), "dof": int(dof),
            "p_value": float(stats.chi2.sf(statistic, dof)),
            "max_abs_corr": float(off.max())}  # fmt: skip


def applies_to(model) -> bool:
    """Whether :func:`noise_check` tests ``model``: it has exogenous noise (``exogenous``) and
    reads the labels (the labels-ignored ablation's single law is contradicted by any design
    with interventions, so its rejection would say nothing about its concepts), and the model
    does not declare ``noise_check_applies = False`` (the paper's context-module VAE, whose
    context-free encoder cannot give independent noise in every context)."""
    if not getattr(model, "noise_check_applies", True):  # fails by construction: see the model
        return False
    return callable(getattr(model, "exogenous", None)) and bool(getattr(model, "needs_labels", 1))


def noise_check(model, split: TensorData, contexts: Sequence[int], names: Sequence[str],
                max_rows: int | None = None, batch_size: int = 1024) -> dict | None:  # fmt: skip
    """Bartlett's test on the model's exogenous noise (``model.exogenous``) in each context.

    ``split``: rows (normalised as the model's inputs); ``contexts``: the context indices to test,
    ``names`` their names by index; ``max_rows``: at most this many rows per context (the first).
    Returns ``{"contexts": {name: bartlett(...)}, "min_p": ..., "bonferroni_p": min(1, min_p *
    number of contexts), "statistic_per_dof": the statistics summed over the contexts over their
    degrees of freedom summed (about 1 when the noise is independent; a graded measure where the
    p-values all underflow), "skipped": {name: why}}`` (a context with too few rows, or whose
    noise holds non-finite values, a constant coordinate or linearly dependent coordinates, is
    skipped with the reason; the Bonferroni count is the contexts tested), or None when the
    model has no exogenous noise to test (no ``exogenous``, or a single coordinate), ignores
    the labels (the labels-ignored ablation, whose single law is contradicted by any design
    with interventions: its rejection would say nothing about its concepts), or no context
    could be tested. Rows are encoded ``batch_size`` at a time on the model's device. A model
    whose noise is a posterior draw (the VAEs) draws it from one generator seeded with 0, so
    the check is reproducible on one device with the same rows and ``batch_size``.

    Only the *independence* of the noise is tested (correlations, so each context's mean and
    scale are removed): a wrong mean or variance passes. The coordinates are the concepts' and
    the nuisance's together.
    """
    if not applies_to(model):
        return None
    params = model.parameters() if callable(getattr(model, "parameters", None)) else ()
    device = next((p.device for p in params), torch.device("cpu"))
    # a posterior draw (the VAEs) from one seeded generator; a model whose ``exogenous`` takes
    # no generator (deterministic noise, or a model written before it existed) is called without
    accepted = inspect.signature(model.exogenous).parameters
    takes = "generator" in accepted or any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    extra = {"generator": torch.Generator(device=device).manual_seed(0)} if takes else {}
    out, skipped = {}, {}
    for k in contexts:
        rows = torch.nonzero(split.context == k).flatten()
        if max_rows is not None:
            rows = rows[:max_rows]
        if len(rows) == 0:
            continue
        with torch.no_grad():
            eps = np.concatenate([
                model.exogenous(split.x[r].to(device), split.targets[r].to(device),
                                **extra).cpu().numpy()
                for r in rows.split(batch_size)
            ])  # fmt: skip
        if eps.shape[1] < 2:
            return None
        try:
            out[names[k]] = bartlett(eps)
        except UsageError as err:  # too few rows, or a collapsed or diverged model: said
            skipped[names[k]] = str(err)
    if not out:
        return None
    min_p = min(v["p_value"] for v in out.values())
    ratio = sum(v["statistic"] for v in out.values()) / sum(v["dof"] for v in out.values())
    return {"contexts": out, "min_p": min_p, "bonferroni_p": min(1.0, min_p * len(out)),
            "statistic_per_dof": ratio, "skipped": skipped}  # fmt: skip
