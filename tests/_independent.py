"""Independent re-verification of witnesses, for the tests.

It shares no code with ``conceptid.identifiability.witnesses`` or
``conceptid.identifiability.gaussian``: the laws
come from the simulations layer's own population moments (``SEM.population_mean`` and
``population_covariance`` of each intervened SEM), in floats, and the class test is a
least-squares fit of each concept's read-out ``C_B[j] = D_j C_A[j]``. Also the search for second
models used by the soundness suite (:class:`SecondModelSearch`).
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


def reverify_linear(witness) -> tuple[bool, bool, float]:
    """``(equal laws in every training context, outside the class, worst relative gap)`` of a
    witness whose second model is a ConceptModel with the same mixing."""
    a, b = witness.model_a, witness.model_b
    assert a.mixing is b.mixing, "a linear witness keeps the mixing"
    assert [c.name for c in a.contexts] == [c.name for c in b.contexts]
    worst = 0.0
    for ca, cb in zip(a.contexts, b.contexts):
        (ma, Sa), (mb, Sb) = embedding_moments(a, ca), embedding_moments(b, cb)
        if not all(np.isfinite(M).all() for M in (ma, Sa, mb, Sb)):  # max() would skip a NaN
            return False, False, float("inf")
        scale = 1.0 + np.abs(Sa).max() + np.abs(ma).max()
        worst = max(worst, np.abs(ma - mb).max() / scale, np.abs(Sa - Sb).max() / scale)
    equal = gaussian_everywhere(a) and gaussian_everywhere(b) and worst < TOL
    outside = concept_class_residuals(a.C, b.C, a.sem.slices).max() > 1e-6
    return equal, bool(outside), float(worst)


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

        e0 = energy(z)
        gap = np.abs(energy(h(z)) - e0) / (1.0 + np.abs(e0))  # relative: float rounding of E
        worst_density = max(worst_density, float(gap.max()))
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


def concept_class_residuals(C_a: np.ndarray, C_b: np.ndarray, slices) -> np.ndarray:
    """Per concept ``j``: how far the second read-out's block ``C_B[j]`` is from ``D_j C_A[j]``
    (the class: an invertible map of the concept alone), relative to ``|C_B[j]|``."""
    out = []
    for sl in slices:
        A, B = C_a[sl], C_b[sl]
        D = np.linalg.lstsq(A.T, B.T, rcond=None)[0].T
        out.append(np.linalg.norm(D @ A - B) / max(np.linalg.norm(B), 1e-300))
    return np.array(out)


class SecondModelSearch:
    """A search for a second linear Gaussian model with the first's law of ``e`` in every
    training context: the same targets and kinds of intervention, anything else free.

    Parameters of the second model: ``M = T_B^{-1}`` (``(d, d)``, ``e = M [c'; n']`` with
    ``n' ~ N(0, I)``, the nuisance scale absorbed), for a causal order ``pi`` the strictly
    block-lower-triangular ``B'`` (every DAG compatible with ``pi``), noise means and Cholesky
    factors, and per context and intervention: a hard law (mean, Cholesky), a shift (shift,
    Cholesky of the added covariance) or a soft one (the target's whole row of weights, mean,
    Cholesky). Equal laws of ``e`` give equal laws of ``x = f(e)``; for an injective ``f`` they
    are equivalent, so for a mixing that is not linear the search covers the second models whose
    mixing is ``f`` composed with a linear map.

    :meth:`run` minimises the relative discrepancy of the laws with
    ``scipy.optimize.least_squares`` from starts *outside the class* (the truth with ``M``
    mixed across concepts and the nuisance by ``I + spread G``, the SEM jittered), for several
    causal orders and spreads, and returns ``(cost, per-concept class residuals, order)`` per
    start. A wide spread matters: alternative models can be isolated points (N1's root case)
    that a start near the truth never reaches.
    """

    def __init__(self, model):
        self.model = model
        sem = model.sem
        self.m, self.K, self.d = sem.m, sem.K, model.d
        self.slices = sem.slices
        self.ks = [s.stop - s.start for s in sem.slices]
        self.targets = [
            [(sem.resolve(iv.target), iv.kind) for iv in ctx.interventions]
            for ctx in model.contexts
        ]
        laws = [embedding_moments(model, ctx) for ctx in model.contexts]
        self.mean_a = np.array([m for m, _ in laws]).reshape(len(laws), self.d)
        self.cov_a = np.array([S for _, S in laws]).reshape(len(laws), self.d, self.d)
        self.scale = np.array([1.0 + np.abs(S).max() + np.abs(m).max() for m, S in laws])
        self.iu = np.triu_indices(self.d)
        self.plans: dict = {}

    # -- parameter layout ---------------------------------------------------------------------

    def plan(self, order):
        """Where each parameter sits in the flat vector, for the causal order ``order``."""
        if order in self.plans:
            return self.plans[order]
        K, d = self.K, self.d
        pos = {j: p for p, j in enumerate(order)}
        mask = np.zeros((K, K), dtype=bool)
        for j in range(self.m):
            for i in range(self.m):
                if pos[i] < pos[j]:
                    mask[self.slices[j], self.slices[i]] = True
        at = 0

        def take(n):
            nonlocal at
            at += n
            return slice(at - n, at)

        plan = {"mask": mask, "M": take(d * d), "B": take(int(mask.sum())), "mu": take(K)}
        plan["L"] = [take(k * (k + 1) // 2) for k in self.ks]
        plan["iv"] = []
        for ivs in self.targets:
            row = []
            for j, kind in ivs:
                k = self.ks[j]
                n_row = int(mask[self.slices[j]].sum()) if kind == "soft" else 0
                row.append((j, kind, take(n_row), take(k), take(k * (k + 1) // 2)))
            plan["iv"].append(row)
        plan["size"] = at
        self.plans[order] = plan
        return plan

    def _cov(self, v, k):
        if k == 1:
            return np.array([[v[0] * v[0]]])
        L = np.zeros((k, k))
        L[np.tril_indices(k)] = v
        return L @ L.T

    def laws_of(self, x, order):
        """The second model's means ``(C, d)`` and covariances ``(C, d, d)`` of ``e``, one per
        training context, and ``M``."""
        p = self.plan(order)
        K, d, n_ctx = self.K, self.d, len(self.targets)
        M = x[p["M"]].reshape(d, d)
        B = np.zeros((K, K))
        B[p["mask"]] = x[p["B"]]
        S = np.zeros((K, K))
        for j, sl in enumerate(self.slices):
            S[sl, sl] = self._cov(x[p["L"][j]], self.ks[j])
        Bs = np.repeat(B[None], n_ctx, axis=0)
        mus = np.repeat(x[p["mu"]][None], n_ctx, axis=0)
        Ss = np.repeat(S[None], n_ctx, axis=0)
        for c, ivs in enumerate(p["iv"]):
            for j, kind, s_row, s_mean, s_chol in ivs:
                sl, k = self.slices[j], self.ks[j]
                extra = self._cov(x[s_chol], k)
                if kind == "shift":
                    mus[c, sl] += x[s_mean]
                    Ss[c, sl, sl] += extra
                    continue
                Bs[c, sl, :] = 0.0
                if kind == "soft":  # a new row of weights on the predecessors
                    Bs[c, sl][p["mask"][sl]] = x[s_row]
                mus[c, sl], Ss[c, sl, sl] = x[s_mean], extra
        R = np.linalg.inv(np.eye(K) - Bs)
        covs = np.zeros((n_ctx, d, d))
        covs[:, :K, :K] = R @ Ss @ R.transpose(0, 2, 1)
        covs[:, K:, K:] = np.eye(d - K)
        means = np.zeros((n_ctx, d))
        means[:, :K] = np.einsum("cij,cj->ci", R, mus)
        return means @ M.T, M @ covs @ M.T, M

    def residuals(self, x, order):
        means, covs, _ = self.laws_of(x, order)
        dm = (means - self.mean_a) / self.scale[:, None]
        dS = (covs - self.cov_a)[:, self.iu[0], self.iu[1]] / self.scale[:, None]
        return np.concatenate([dm.ravel(), dS.ravel()])

    # -- starts ---------------------------------------------------------------------------------

    def start(self, order, rng, spread=0.5):
        """The truth in ``order`` (weights the order cannot hold are dropped) with ``M`` mixed
        outside the class by ``I + spread G`` and the rest jittered."""
        model, sem = self.model, self.model.sem
        p = self.plan(order)
        K, d = self.K, self.d
        x = np.zeros(p["size"])
        G = rng.standard_normal((d, d))
        for sl in self.slices:  # mix only *across* concepts, and with the nuisance
            G[sl, sl] = 0.0
        G[K:, K:] = 0.0
        scale = np.concatenate([np.ones(K), np.full(d - K, model.nuisance_scale)])
        x[p["M"]] = (np.linalg.inv(model.readout) * scale @ (np.eye(d) + spread * G)).ravel()
        x[p["B"]] = sem.weights[p["mask"]] + 0.1 * rng.standard_normal(int(p["mask"].sum()))
        x[p["mu"]] = sem.noise_mean + 0.1 * rng.standard_normal(K)

        def chol(S):
            L = np.linalg.cholesky(S + 1e-3 * np.eye(len(S)))
            return L[np.tril_indices(len(S))]

        for j, Sj in enumerate(sem.noise_cov):
            x[p["L"][j]] = chol(Sj)
        for ctx, ivs in zip(model.contexts, p["iv"]):
            s = sem.intervene(ctx)
            for j, kind, s_row, s_mean, s_chol in ivs:
                sl = self.slices[j]
                if kind == "shift":
                    x[s_mean] = s.noise_mean[sl] - sem.noise_mean[sl]
                    x[s_chol] = chol(s.noise_cov[j] - sem.noise_cov[j])
                    continue
                if kind == "soft":
                    x[s_row] = s.weights[sl][p["mask"][sl]]
                x[s_mean], x[s_chol] = s.noise_mean[sl], chol(s.noise_cov[j])
        return x

    def run(self, rng, orders=None, spreads=(0.5, 1.5, 4.0), budget=(80, 400)):
        """One start per order and spread (``orders`` default to every causal order). A start
        gets ``budget[0]`` evaluations; it goes on to ``budget[1]`` only if its discrepancy is
        then below ``1e-4`` (a start stalled above that is far from any second model, and
        letting it crawl costs seconds)."""
        from itertools import permutations

        from scipy.optimize import least_squares

        orders = list(permutations(range(self.m))) if orders is None else orders
        out = []
        for order in map(tuple, orders):
            for spread in spreads:
                x = self.start(order, rng, spread)
                lm = self.residuals(x, order).size >= x.size  # lm needs residuals >= unknowns
                for n in budget:
                    sol = least_squares(
                        self.residuals, x, args=(order,), method="lm" if lm else "trf",
                        xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=n,
                    )  # fmt: skip
                    x = sol.x
                    if sol.status != 0 or np.sum(sol.fun**2) > 1e-4:
                        break  # converged, or stalled far from any second model
                M = self.laws_of(x, order)[2]
                if np.linalg.cond(M) > 1e12:  # a degenerate read-out is no second model
                    continue
                res = concept_class_residuals(self.model.C, np.linalg.inv(M)[: self.K],
                                              self.slices)  # fmt: skip
                out.append((float(np.sum(sol.fun**2)), res, order))
        return out
