"""conceptid.models.unpeeled: the basis of never-intervened concepts and the SEM, by likelihood on
moments.

On exact population moments of the quad SEM (observed directly), the concepts without an
intervention context (``color``, ``shape``) are given the provisional basis a snap gives them
(their part uncorrelated with the peeled concepts). The refit must then reproduce the law of every
training context, and, the point of it, the law of a composition never seen in training.
"""

from __future__ import annotations

import numpy as np

from conceptid.models.unpeeled import fit_unpeeled
from conceptid.simulations import Context, Hard, quad


def _gauss_kl(m0, S0, m1, S1) -> float:
    """KL(N(m0, S0) || N(m1, S1))."""
    k = len(m0)
    S1i = np.linalg.inv(S1)
    d = m1 - m0
    return 0.5 * (np.trace(S1i @ S0) + d @ S1i @ d - k + np.log(np.linalg.det(S1) /
                                                            np.linalg.det(S0)))  # fmt: skip


def _law(fit, mask):
    K = len(mask)
    B = fit["B"] * (~mask)[:, None]
    M = np.linalg.inv(np.eye(K) - B)
    mu = np.where(mask, fit["mu_int"], fit["mu_obs"])
    var = np.where(mask, fit["var_int"], fit["var_obs"])
    return M @ mu, M @ np.diag(var) @ M.T


def test_refit_reproduces_every_context_and_an_unseen_composition():
    model = quad(mixing="identity")
    names = list(model.sem.names)
    U = [names.index("color"), names.index("shape")]
    P = [j for j in range(8) if j not in U]
    _, S0 = model.population_moments("obs")
    # the provisional basis: the unpeeled concepts' part uncorrelated with the peeled ones
    T = np.eye(8)
    T[np.ix_(U, P)] = -S0[np.ix_(U, P)] @ np.linalg.inv(S0[np.ix_(P, P)])
    moments, masks = [], []
    for ctx in model.contexts:
        mu, S = model.population_moments(ctx)
        moments.append((T @ mu, T @ S @ T.T))
        masks.append([n in ctx.targets for n in names])
    masks = np.array(masks)
    init = {"B": np.zeros((8, 8)), "mu_obs": moments[0][0], "var_obs": np.diag(moments[0][1]),
            "mu_int": np.zeros(8), "var_int": np.ones(8)}  # fmt: skip
    fit = fit_unpeeled(moments, [2000] * len(moments), masks, [1] * 8, U, init, seed=0)
    assert fit is not None
    A = fit["A"]
    assert np.allclose(A[P], np.eye(8)[P])  # the peeled coordinates are left as they were
    for (mu, S), mask in zip(moments, masks):
        m_fit, S_fit = _law(fit, mask)
        assert _gauss_kl(A @ mu, A @ S @ A.T, m_fit, S_fit) < 2e-3
    # a composition never seen: do(quad1, size), in the refitted coordinates
    pair = Context((model.contexts[names.index("quad1") + 1].interventions[0],
                    model.contexts[5].interventions[0]))  # fmt: skip
    assert set(pair.targets) == {"quad1", "size"} and all(isinstance(i, Hard) for i in pair)
    mu, S = model.population_moments(pair)
    want = (A @ T @ mu, A @ T @ S @ T.T @ A.T)
    got = _law(fit, np.array([n in pair.targets for n in names]))
    assert _gauss_kl(*want, *got) < 5e-3
    # the provisional basis alone (no refit, no edges into it) cannot reproduce the
    # observational law: the check can tell
    naive = dict(init, B=np.zeros((8, 8)))
    assert _gauss_kl(*moments[0], *_law(naive, masks[0])) > 0.1
