"""Independent re-verification of witnesses, for the tests.

It shares no code with ``identifiability.witnesses`` or ``identifiability.gaussian``: the laws
come from the simulations layer's own population moments (``SEM.population_mean`` and
``population_covariance`` of each intervened SEM), in floats, and the class test is a least-squares
fit of ``C_B = D C_A``.
"""

from __future__ import annotations

import numpy as np

#: relative tolerance of the float comparisons (the witnesses' second models are exact rationals
#: rounded to floats, so their laws agree to about 1e-15)
TOL = 1e-9


def embedding_moments(model, context) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(d,)`` and covariance ``(d, d)`` of ``e = T^{-1} [c; n]`` under ``context``."""
    s = model.sem.intervene(context)
    mu_c, cov_c = s.population_mean(), s.population_covariance()
    d, K = model.d, model.K
    mean = np.concatenate([mu_c, np.zeros(d - K)])
    cov = np.zeros((d, d))
    cov[:K, :K] = cov_c
    cov[K:, K:] = model.nuisance_scale**2 * np.eye(d - K)
    Tinv = np.linalg.inv(model.readout)
    return Tinv @ mean, Tinv @ cov @ Tinv.T


def gaussian_everywhere(model) -> bool:
    """Every training context's concept law is Gaussian (linear mechanisms, Gaussian noise)."""
    for ctx in model.contexts:
        s = model.sem.intervene(ctx)
        if s.mechanism != "linear" or any(f != "gaussian" for f in s.noise_family):
            return False
    return True


def class_residual(model_a, model_b) -> float:
    """How far ``C_B`` is from ``D C_A`` with ``D`` block-diagonal, relative to ``|C_B|``: the
    least-squares misfit of ``C_B = D C_A`` plus the off-block part of the fitted ``D``."""
    Ca, Cb = model_a.C, model_b.C
    D = np.linalg.lstsq(Ca.T, Cb.T, rcond=None)[0].T
    off = D.copy()
    for sl in model_a.sem.slices:
        off[sl, sl] = 0.0
    misfit = np.linalg.norm(D @ Ca - Cb)
    return float((misfit + np.linalg.norm(off @ Ca)) / np.linalg.norm(Cb))


def reverify_linear(witness) -> tuple[bool, bool, float]:
    """``(equal laws in every training context, outside the class, worst relative gap)`` of a
    witness whose second model is a ConceptModel with the same mixing."""
    a, b = witness.model_a, witness.model_b
    assert a.mixing is b.mixing, "a linear witness keeps the mixing"
    assert [c.name for c in a.contexts] == [c.name for c in b.contexts]
    worst = 0.0
    for ca, cb in zip(a.contexts, b.contexts):
        (ma, Sa), (mb, Sb) = embedding_moments(a, ca), embedding_moments(b, cb)
        scale = 1.0 + np.abs(Sa).max() + np.abs(ma).max()
        worst = max(worst, np.abs(ma - mb).max() / scale, np.abs(Sa - Sb).max() / scale)
    equal = gaussian_everywhere(a) and gaussian_everywhere(b) and worst < TOL
    return equal, class_residual(a, b) > 1e-6, float(worst)


def reverify_transform(witness, n: int = 400, seed: int = 1) -> tuple[bool, bool, float]:
    """The same for a witness given by a map ``h: (c, n) -> (c', n')`` of the first model's
    variables (N5): in every training context ``h`` preserves the joint Gaussian log-density of
    ``(c, n)`` at random points and has a unit Jacobian determinant (central differences), so it
    preserves the law; and the new concepts depend on the nuisance."""
    model = witness.model_a
    rng = np.random.default_rng(seed)
    K, d = model.K, model.d

    def h(z):
        c2, n2 = witness.transform(z[:, :K], z[:, K:])
        return np.concatenate([c2, n2], axis=1)

    worst_density, worst_det = 0.0, 0.0
    for ctx in model.contexts:
        s = model.sem.intervene(ctx)
        mu, S = s.population_mean(), s.population_covariance()
        P = np.linalg.inv(S)
        z = np.concatenate(
            [rng.multivariate_normal(mu, S, size=n),
             model.nuisance_scale * rng.standard_normal((n, d - K))], axis=1
        )  # fmt: skip

        def energy(z, mu=mu, P=P):
            dc = z[:, :K] - mu
            return np.einsum("ni,ij,nj->n", dc, P, dc) + (z[:, K:] ** 2).sum(1) / (
                model.nuisance_scale**2
            )

        worst_density = max(worst_density, float(np.abs(energy(h(z)) - energy(z)).max()))
        for zi in z[:5]:
            J = np.stack([(h((zi + e)[None]) - h((zi - e)[None]))[0] / 2e-6
                          for e in 1e-6 * np.eye(d)], axis=1)  # fmt: skip
            worst_det = max(worst_det, abs(abs(np.linalg.det(J)) - 1.0))
    c = np.ones((2, K))
    nus = np.zeros((2, d - K))
    nus[1, 0] = 0.7
    moved = witness.transform(c, nus)[0]
    outside = bool(np.abs(moved[0] - moved[1]).max() > 1e-3)
    return worst_density < TOL and worst_det < 1e-6, outside, max(worst_density, worst_det)
