"""Evaluation metrics (one module, documented formulas).

- :func:`recovery`: per-concept R^2 of the best affine map from the learned concept (block) to
  the true one, through :func:`conceptid.identifiability.align` (the single definition of
  "recovered up to
  the proven class"); representations without concept blocks are assigned by Hungarian matching.
- :func:`mcc`: mean correlation coefficient, ``mean_j |corr(l_pi(j), c_j)|`` over the Hungarian
  matching ``pi`` maximising the total absolute Pearson correlation (the literature's MCC).
- :func:`sliced_wasserstein`: POT's ``sliced_wasserstein_distance`` between two sample sets
  (fixed seed and number of projections), on flattened observations.
- :func:`active_dims`: latent dimensions whose posterior mean varies across the data,
  ``Var_x[E q(z|x)] > threshold`` (0.01 by default; collapsed dimensions have variance ~0).
- :func:`bits_per_dim`: a negative ELBO in nats per sample, divided by ``D log 2``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from conceptid.identifiability.equivalence import AlignResult, align
from conceptid.simulations.errors import UsageError
from conceptid.simulations.resources import check_memory
from conceptid.simulations.validation import check_number

__all__ = ["active_dims", "bits_per_dim", "mcc", "recovery", "sliced_wasserstein"]


def recovery(
    learned: np.ndarray, true: np.ndarray, block_sizes: Sequence[int] | None = None,
    *, hungarian: bool = False,
) -> AlignResult:  # fmt: skip
    """Per-concept R^2 up to the class (see :func:`conceptid.identifiability.align`)."""
    if hungarian:
        return align(learned, true, block_sizes, assignment="hungarian")
    return align(learned, true, block_sizes)


def _real(values, name: str) -> np.ndarray:
    """``values`` as a float64 array; UsageError for complex values (their imaginary part
    would be dropped) or entries that are not numbers."""
    try:
        a = np.asarray(values)
    except (TypeError, ValueError, RuntimeError) as err:  # e.g. a tensor that needs grad
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UsageError(f"{name} must be an array of real numbers, got "
                         f"{type(values).__name__} ({why})") from None  # fmt: skip
    if np.iscomplexobj(a):
        raise UsageError(f"{name} must be real, got complex values ({a.dtype})")
    try:
        return a.astype(np.float64)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be an array of real numbers, got dtype {a.dtype}") from None


def _samples(values, name: str, *, flatten: bool = False) -> np.ndarray:
    """``values`` as a real float64 ``(n, d)`` array with ``n, d >= 1`` and every entry finite
    (``flatten``: observations ``(n, ...)`` of any shape, flattened to ``(n, d)``); else
    UsageError, one line naming ``name``."""
    a = _real(values, name)
    if a.ndim != 2 and not (flatten and a.ndim > 2):
        raise UsageError(f"{name} must be a 2-d array (samples, {'...' if flatten else 'd'}), "
                         f"one sample per row, got shape {a.shape}")  # fmt: skip
    if a.shape[0] == 0 or a.size == 0:
        raise UsageError(f"{name} is empty {a.shape}: it needs at least one row and one column")
    a = a.reshape(len(a), -1)
    if not np.isfinite(a).all():
        raise UsageError(f"{name} holds {int(np.sum(~np.isfinite(a)))} NaN or infinite "
                         f"value(s)")  # fmt: skip
    return a


def mcc(learned: np.ndarray, true: np.ndarray) -> float:
    """Mean absolute Pearson correlation after Hungarian matching (scalar concepts).

    Raises
    ------
    UsageError
        Arrays that are not 2-d with the same number of rows, fewer learned dimensions than
        true ones, and (one line naming the array) complex or non-numeric entries, no rows or
        no columns, a NaN or infinite entry.
    """
    from scipy.optimize import linear_sum_assignment

    L, C = _samples(learned, "learned"), _samples(true, "true")
    if L.shape[0] != C.shape[0]:
        raise UsageError(f"learned {L.shape} and true {C.shape} must be (n, .) with equal n")
    if L.shape[1] < C.shape[1]:
        raise UsageError("mcc needs at least as many learned dimensions as true concepts")
    Ls = (L - L.mean(0)) / np.where(L.std(0) > 0, L.std(0), 1.0)
    Cs = (C - C.mean(0)) / np.where(C.std(0) > 0, C.std(0), 1.0)
    corr = np.abs(Ls.T @ Cs) / L.shape[0]
    rows, cols = linear_sum_assignment(-corr)
    return float(corr[rows, cols].mean())


def sliced_wasserstein(
    a: np.ndarray, b: np.ndarray, *, n_projections: int = 200, seed: int = 0
) -> float:
    """Sliced Wasserstein-2 distance between two sample sets (POT), observations flattened.

    ``a`` and ``b``: real arrays ``(n, ...)``, one sample per row (at least one, of at least
    one value), of the same number of values per sample once flattened. ``n_projections``:
    an integer >= 1. ``seed`` (an integer >= 0 of any size) draws the projections; POT seeds
    numpy's legacy generator, which takes 32 bits, so it gets ``seed`` modulo ``2**32``
    (itself below that).

    Raises
    ------
    UsageError
        One line naming what is wrong: ``n_projections`` or ``seed`` of another type or range
        (a bool or a float included); a sample set that is complex or not numeric, of fewer
        than two dimensions, empty, or holding a NaN or infinite value; sets of different
        dimensions.
    MemoryLimitError
        When the projections (``n_projections`` per sample of both sets) would not fit in
        memory.
    """
    import ot

    n_projections = check_number(n_projections, "n_projections")
    seed = check_number(seed, "seed", minimum=0)
    A, B = _samples(a, "a", flatten=True), _samples(b, "b", flatten=True)
    if A.shape[1] != B.shape[1]:
        raise UsageError(f"sample sets have different dimensions {A.shape[1]} and {B.shape[1]}")
    # POT holds the projections (d, P) and, sorting each projection of both sets, about ten
    # float64 arrays of (n_a + n_b, P)
    check_memory(8 * n_projections * (2 * A.shape[1] + 12 * (len(A) + len(B))),
                 f"sliced_wasserstein with {n_projections} projections")  # fmt: skip
    seed = seed % 2**32
    return float(ot.sliced_wasserstein_distance(A, B, n_projections=n_projections, seed=seed))


def active_dims(posterior_means: np.ndarray, threshold: float = 0.01) -> int:
    """Number of latent dimensions with ``Var_x[E q(z|x)] > threshold``.

    Raises
    ------
    UsageError
        ``posterior_means`` that are not a real 2-d array ``(n, d)`` with at least one row
        and one column, every entry finite (one line naming what is wrong).
    """
    M = _samples(posterior_means, "posterior_means")
    return int(np.sum(M.var(axis=0) > threshold))


def bits_per_dim(neg_elbo_nats: float, n_dims: int) -> float:
    """Negative ELBO per sample (nats) as bits per observed dimension.

    Raises
    ------
    UsageError
        ``n_dims`` not a positive integer; ``neg_elbo_nats`` not a finite real number (NaN
        and infinities included).
    """
    check_number(n_dims, "n_dims")
    nats = _real(neg_elbo_nats, "neg_elbo_nats")
    if nats.size != 1 or not np.isfinite(nats).all():
        raise UsageError(f"neg_elbo_nats must be one finite number, got {neg_elbo_nats!r}")
    return float(nats.item()) / (n_dims * np.log(2.0))
