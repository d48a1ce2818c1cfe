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


def mcc(learned: np.ndarray, true: np.ndarray) -> float:
    """Mean absolute Pearson correlation after Hungarian matching (scalar concepts)."""
    from scipy.optimize import linear_sum_assignment

    L = np.asarray(learned, dtype=float)
    C = np.asarray(true, dtype=float)
    if L.ndim != 2 or C.ndim != 2 or L.shape[0] != C.shape[0]:
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

    ``seed`` (an integer >= 0 of any size) draws the projections; POT seeds numpy's legacy
    generator, which takes 32 bits, so it gets ``seed`` modulo ``2**32`` (itself below that)."""
    import ot

    A = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    B = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    if A.shape[1] != B.shape[1]:
        raise UsageError(f"sample sets have different dimensions {A.shape[1]} and {B.shape[1]}")
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(B))):
        raise UsageError("samples contain NaN or infinite values")
    seed = int(seed) % 2**32
    return float(ot.sliced_wasserstein_distance(A, B, n_projections=n_projections, seed=seed))


def active_dims(posterior_means: np.ndarray, threshold: float = 0.01) -> int:
    """Number of latent dimensions with ``Var_x[E q(z|x)] > threshold``."""
    M = np.asarray(posterior_means, dtype=float)
    return int(np.sum(M.var(axis=0) > threshold))


def bits_per_dim(neg_elbo_nats: float, n_dims: int) -> float:
    """Negative ELBO per sample (nats) as bits per observed dimension."""
    check_number(n_dims, "n_dims")
    return float(neg_elbo_nats) / (n_dims * np.log(2.0))
