"""Exact population laws of a linear Gaussian :class:`~conceptid.simulations.model.ConceptModel`.

All functions take an :class:`~conceptid.identifiability.linalg.Arithmetic`, so the same formulas
run in
rationals or in floats:

- concept law in a context: mean ``M mu`` and covariance ``M S M^T`` with ``M = (I - B)^{-1}``;
- embedding law: ``e = T^{-1} [c; n]`` with ``n ~ N(0, s^2 I)`` independent of ``c``;
- the *homogeneous precision* ``Psi`` of a Gaussian: ``log p(z) = -1/2 z^T Psi z + const`` with
  ``z = (x, 1)``, i.e. ``Psi = [[Theta, -Theta mu], [-mu^T Theta, mu^T Theta mu]]``. Differences
  ``Psi_k - Psi_0`` are the log-density ratios between contexts, up to a constant (Lemma 1).
"""

from __future__ import annotations

import numpy as np

from conceptid.simulations.interventions import Context, as_covariance, as_vector
from conceptid.simulations.model import ConceptModel
from conceptid.simulations.sem import SEM

from .linalg import Arithmetic, to_fraction

__all__ = [
    "concept_law",
    "congruence",
    "embedding_law",
    "homogeneous_precision",
    "sem_matrices",
    "standard_frame",
]


def sem_matrices(sem: SEM, A: Arithmetic):
    """``(B, mu, S)`` of an SEM in arithmetic ``A``: ``(K, K)``, ``(K, 1)``, ``(K, K)``."""
    S = A.mat(sem.noise_cov_matrix())
    return A.mat(sem.weights), A.T(A.mat(sem.noise_mean)), S


def _intervened(sem: SEM, context: Context | None, A: Arithmetic, base, override=None):
    """The intervened SEM's matrices; with ``base`` (exact observational ``(B, mu, S)`` as object
    arrays of Fractions) each intervention is applied to the exact parameters (its own numbers,
    given as floats, read exactly), so that a model whose parameters are known exactly stays
    exact. ``override``: exact intervention laws ``(mu_j, S_j)`` of a hard intervention, keyed
    by ``(context name, j)`` or by ``j`` for every context (a float law is rounded), and
    exact weights ``{parent index: block}`` of a soft intervention on ``j``, keyed by
    ``("soft", context name, j)``."""
    s = sem.intervene(context)
    if base is None:
        return sem_matrices(s, A)
    B, mu, S = (np.array(x, dtype=object) for x in base)
    for iv in context.interventions if context is not None else ():
        j = sem.resolve(iv.target)
        sl, k = sem.slices[j], sem.block_sizes[j]
        if iv.kind == "shift":
            mu[sl] = mu[sl] + [to_fraction(x) for x in as_vector(iv.shift, k, "shift")]
            if iv.extra_cov is not None:
                add = as_covariance(iv.extra_cov, k, "extra_cov", psd_only=True)
                S[sl, sl] = S[sl, sl] + np.array([[to_fraction(x) for x in r] for r in add])
        elif iv.kind == "soft":
            for parent, w in iv.weights.items():
                i = sem.resolve(parent)
                W = np.asarray(w, dtype=float).reshape(k, sem.block_sizes[i])
                B[sl, sem.slices[i]] = [[to_fraction(x) for x in r] for r in W]
            if iv.mean is not None:
                mu[sl] = [to_fraction(x) for x in s.noise_mean[sl]]
            if iv.cov is not None:
                S[sl, sl] = [[to_fraction(x) for x in r] for r in s.noise_cov[j]]
            key = ("soft", context.name, j)
            if override and key in override:  # exact weights: parent index -> block
                for i, block in override[key].items():
                    B[sl, sem.slices[i]] = block
        else:  # hard: the rows are cut, the law is the intervention's own
            B[sl, :] = [[to_fraction(x) for x in r] for r in s.weights[sl]]
            mu[sl] = [to_fraction(x) for x in s.noise_mean[sl]]
            S[sl, sl] = [[to_fraction(x) for x in r] for r in s.noise_cov[j]]
            key = (context.name, j)
            if override and (key in override or j in override):
                mu[sl], S[sl, sl] = override[key] if key in override else override[j]
    return A.mat(B), A.T(A.mat(mu)), A.mat(S)


def concept_law(sem: SEM, context: Context | None, A: Arithmetic, base=None, override=None):
    """Mean ``(K, 1)`` and covariance ``(K, K)`` of the concepts under ``context``.

    ``base``: optional exact observational parameters ``(B, mu, S)`` (object arrays of
    Fractions) overriding the SEM's floats, for models built in exact arithmetic."""
    B, mu, S = _intervened(sem, context, A, base, override)
    M = A.inv(A.sub(A.eye(sem.K), B))
    return A.mul(M, mu), A.mul(A.mul(M, S), A.T(M))


def embedding_law(model: ConceptModel, context: Context | None, A: Arithmetic, exact=None):
    """Mean ``(d, 1)`` and covariance ``(d, d)`` of the embedding ``e`` under ``context``.

    ``exact``: optional ``{"base": (B, mu, S), "readout": T}`` of Fraction object arrays that
    replace the model's floats (see :func:`concept_law`)."""
    base = exact["base"] if exact is not None else None
    override = exact.get("override") if exact is not None else None
    mu_c, cov_c = concept_law(model.sem, context, A, base, override)
    d, K = model.d, model.K
    mean = A.vstack(mu_c, A.zeros(d - K, 1)) if d > K else mu_c
    if d > K:
        s2 = A.scale(A.eye(d - K), to_fraction(model.nuisance_scale) ** 2)
        top = A.hstack(cov_c, A.zeros(K, d - K))
        cov = A.vstack(top, A.hstack(A.zeros(d - K, K), s2))
    else:
        cov = cov_c
    T = exact["readout"] if exact is not None else model.readout
    Tinv = A.inv(A.mat(T))
    return A.mul(Tinv, mean), A.mul(A.mul(Tinv, cov), A.T(Tinv))


def homogeneous_precision(mean, cov, A: Arithmetic):
    """``Psi`` (``(n+1, n+1)``) with ``log p(z) = -1/2 [z; 1]^T Psi [z; 1] + const``."""
    Theta = A.inv(cov)
    Tm = A.mul(Theta, mean)
    corner = A.mul(A.T(mean), Tm)
    top = A.hstack(Theta, A.scale(Tm, -1))
    bottom = A.hstack(A.scale(A.T(Tm), -1), corner)
    return A.vstack(top, bottom)


def standard_frame(sem: SEM, A: Arithmetic):
    """The homogeneous map ``H`` (``(K+1, K+1)``) from standardised concepts to the model's own:
    ``[c; 1] = H [c'; 1]`` with ``c = diag(sd) c' + m``, ``m`` and ``sd`` the observational
    mean and standard deviations. A numeric rank decided in these coordinates does not depend
    on the units the model happens to be written in. ``None`` in exact arithmetic, whose ranks
    do not depend on units (and which has no square roots)."""
    if A.exact:
        return None
    mean, cov = (A.to_float(v) for v in concept_law(sem, None, A))
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    K = sem.K
    H = np.eye(K + 1)
    H[:K, :K] = np.diag(np.where(sd > 0, sd, 1.0))
    H[:K, K] = mean.reshape(-1)
    return H


def congruence(M, H, A: Arithmetic):
    """``H^T M H`` (a quadratic form in new coordinates); ``M`` itself when ``H`` is None."""
    return M if H is None else A.mul(A.mul(A.T(A.mat(H)), M), A.mat(H))
